"""The llama.cpp backend: GGUF models in their own quantisation, batched (the ``llamacpp``
extra: ``pip install 'rbee[llamacpp]'``)."""
