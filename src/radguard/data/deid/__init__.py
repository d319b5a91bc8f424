"""Versioned de-identification data: PS3.15 Table E.1-1 and E.3.10-1 (generated), CID 7050, presets,
IOD types of compound-action attributes, pixel-cleaning rules."""
