"""File formats: every reader and writer of a file format lives here, once.

XDF (reader and the one writer), TMSi Poly5, EDF/EDF+, WFDB, unit names, and the single
path -> Session function used by the CLI, the GUI and the replay source.
"""
