"""Honest evaluation: metrics with patient-bootstrap confidence intervals, calibration, audits, report."""
