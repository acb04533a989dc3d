"""Google Cloud Storage: reading logs, V4 signed URLs (URL access) and downscoped tokens (directory access).
Needs `pip install 'lakegate[gcp]'`; imported only when a gs:// location is used."""
