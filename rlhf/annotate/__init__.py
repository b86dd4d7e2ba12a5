"""The annotation web server and page."""
