"""Clouds that run the launcher on rented GPUs, each behind the small interface in launch/cloud/base.py."""
