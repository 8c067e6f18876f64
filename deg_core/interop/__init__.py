"""Other tools' formats: BORIS event tables in and out (``boris``), NWB files out (``nwb``)."""
