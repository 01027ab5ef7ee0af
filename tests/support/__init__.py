"""Helpers shared by tests that drive real external tools (headless Chromium, LibreOffice)."""
