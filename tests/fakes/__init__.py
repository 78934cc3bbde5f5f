"""Fakes of devices and services for tests (no Bluetooth, no network)."""
