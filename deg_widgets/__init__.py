"""deg widgets: anywidget labeling and review widgets over deg_core."""
