"""NeSF Explorer: the Streamlit app over the `nesf` library (entry file: app/main.py)."""
