"""Thin wrappers around the product's models. They know nothing of Gradio."""
