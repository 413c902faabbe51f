"""The packaged template, IAM, the zip, and the offline deploy rehearsal."""
