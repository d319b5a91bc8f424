"""samples: builders of the demo medium and of hostile DICOM files (built by code, never downloaded)."""
