"""The vid2scene web server: the public REST API, the worker API and the job orchestration.

``create_app`` (in :mod:`web_server.app`) builds the FastAPI application; ``python -m web_server``
serves it and runs the admin commands.
"""
