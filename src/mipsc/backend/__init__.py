"""Hand-off to IREE: running iree-compile and mapping its errors back to the user's file."""
