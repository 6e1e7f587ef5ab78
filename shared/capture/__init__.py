"""The capture check: a verdict on a video (sharpness, motion, coverage, exposure) in seconds, before any heavy work.

:mod:`shared.capture.report` holds the result model (pure pydantic, used by the web server);
:func:`shared.capture.check.check_capture` runs the analysis (OpenCV, imported there only).
"""
