"""Versioned data of the export subsystem: media capacities, crypto and password policy, DICOMDIR
record types, the passphrase word list and the README.TXT template."""
