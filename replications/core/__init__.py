"""Machinery shared by every algorithm: written once, reused (see ../shared STYLE.md)."""
