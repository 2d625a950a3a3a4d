"""Serving a trained run: top-K recommendations, added (cold-start) items, safetensors export."""
