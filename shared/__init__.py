"""Code every vid2scene component shares: contracts, messages, settings and small utilities.

This package imports no other package of ours, and imports without torch, pycolmap or gsplat.
"""
