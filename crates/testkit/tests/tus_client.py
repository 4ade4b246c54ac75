"""Uploads one file to a QuickTok server with tuspy, the PyPI tus client (driven by tus_client.rs).

Usage: tus_client.py URL TOKEN FILE CHUNK_SIZE TITLE FILENAME

URL is the creation endpoint (http://host:port/api/v1/uploads). The upload is sent in
CHUNK_SIZE byte PATCHes, each with an Upload-Checksum (sha1). Prints the absolute upload URL
on the last line of stdout.
"""

import sys

from tusclient import client


def main() -> int:
    if len(sys.argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    url, token, path, chunk_size, title, filename = sys.argv[1:]
    tus = client.TusClient(url, headers={"Authorization": f"Bearer {token}"})
    uploader = tus.uploader(
        file_path=path,
        chunk_size=int(chunk_size),
        metadata={"title": title, "filename": filename},
        upload_checksum=True,
        retries=0,
    )
    uploader.upload()
    if uploader.offset != uploader.get_file_size():
        print(f"stopped at {uploader.offset} of {uploader.get_file_size()} bytes", file=sys.stderr)
        return 1
    print(uploader.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
