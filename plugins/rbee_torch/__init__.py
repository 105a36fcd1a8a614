"""The built-in inference backend: PyTorch + Hugging Face transformers."""
