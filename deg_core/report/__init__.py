"""What a person reads: tables and recorded metrics for notebooks (``notebook``), PNG
charts (``charts``), ethograms and the flow preview."""
