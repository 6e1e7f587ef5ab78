"""The structure-from-motion worker: a video in, posed undistorted frames and a scene manifest out."""
