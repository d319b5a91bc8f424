"""De-identification conforming to DICOM PS3.15 Annex E (placeholder, filled below)."""
