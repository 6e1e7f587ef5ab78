"""The TensoRF stage: a VM-decomposed radiance field trained with SfM depth supervision.

The stage function is :func:`nerf_worker.pipeline.train_tensorf`; the units it calls are small modules
named for what they hold (rays, scene box, model, schedule, render, train, checkpoint).
"""
