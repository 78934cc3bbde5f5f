"""Live ECG: sources (Polar H10, LSL, replay) -> ring buffer -> windows -> scores -> sinks.

Never imports :mod:`ecgaffect.gui`.
"""
