"""Azure Blob Storage and ADLS Gen2: reading logs, per-blob SAS URLs (URL access) and SAS vending (directory
access). Needs `pip install 'lakegate[azure]'`; imported only when an Azure location is used."""
