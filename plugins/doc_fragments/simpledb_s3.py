"""Documentation of the ``s3`` option of the backup modules (storage_s3.py)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  s3:
    description:
      - S3-compatible object storage (AWS S3, MinIO, Ceph RGW ...) for the backup's objects.
      - Objects are C(s3://<bucket>/<prefix>/<name>); data files go up as a multipart upload
        while they are written (no local copy; memory one part being filled plus the parts
        uploading, at most 16 MiB or one part if larger), and a failed write is aborted so
        that no object or stored part is left behind.
      - Where a O(location) names the object (C(s3://bucket/key)), its bucket and key are used and
        O(s3.bucket) and O(s3.prefix) are ignored.
    type: dict
    suboptions:
      bucket:
        description: Bucket name.
        type: str
      prefix:
        description: Key prefix the objects are stored under (no leading or trailing C(/) needed).
        type: str
        default: ""
      endpoint:
        description:
          - Endpoint URL, for example C(https://minio.storage.svc:9000). Without it, AWS S3 in
            O(s3.region).
        type: str
      region:
        description: Region of the bucket.
        type: str
        default: us-east-1
      access_key:
        description:
          - Access key id. Never logged or returned.
        type: str
        required: true
      secret_key:
        description:
          - Secret access key. Never logged or returned.
        type: str
        required: true
      force_path_style:
        description:
          - Address the bucket in the URL's path (C(endpoint/bucket/key)) rather than as a host name
            (C(bucket.endpoint/key)). MinIO and most S3-compatible stores need C(true).
        type: bool
        default: true
      part_size:
        description:
          - Size of the multipart upload's parts in MiB (5 to 5120). The size doubles every 1000
            parts so that any artifact fits S3's 10,000 parts.
        type: int
        default: 8
requirements:
  - boto3 (for O(s3))
"""
