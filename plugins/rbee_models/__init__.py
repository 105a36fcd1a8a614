"""The model library: the built-in model sources, safe downloads, the catalog of the models on
a machine and their provisioning. The keeper, queen, hive and worker import it; it imports
only ``rbee_core`` (httpx and huggingface_hub where a source uses them)."""
