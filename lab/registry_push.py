"""Push an image (one layer) or an image index straight to the lab registry's HTTP API (OCI media types).
The docker CLI here cannot set an imported image's architecture, and a multi-platform base image needs one."""
from __future__ import annotations

import gzip
import hashlib
import json
import ssl
import urllib.request
from dataclasses import dataclass

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass
class Registry:
    address: str             # host:port
    authorization: str       # "Basic ..."
    context: ssl.SSLContext

    def request(self, method: str, path_or_url: str, data: bytes | None = None,
                content_type: str | None = None) -> tuple[int, dict[str, str], bytes]:
        url = path_or_url if path_or_url.startswith("https://") else f"https://{self.address}{path_or_url}"
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", self.authorization)
        if content_type:
            req.add_header("Content-Type", content_type)
        with urllib.request.urlopen(req, context=self.context, timeout=60) as r:
            return r.status, dict(r.headers), r.read()

    def blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        _, headers, _ = self.request("POST", f"/v2/{repo}/blobs/uploads/", b"")
        location = headers["Location"]
        if not location.startswith("https://"):
            location = f"https://{self.address}{location}"
        sep = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{sep}digest={digest}", data, "application/octet-stream")
        return digest

    def manifest(self, repo: str, tag: str, doc: dict, media_type: str) -> tuple[str, int]:
        body = json.dumps(doc).encode()
        self.request("PUT", f"/v2/{repo}/manifests/{tag}", body, media_type)
        return "sha256:" + hashlib.sha256(body).hexdigest(), len(body)


def push_image(reg: Registry, repo: str, tag: str, layer_tar: bytes, os_: str, arch: str,
               cmd: list[str]) -> tuple[str, int]:
    """One image of one gzip layer; returns the manifest's (digest, size)."""
    layer = gzip.compress(layer_tar, mtime=0)
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    config = json.dumps({"architecture": arch, "os": os_, "config": {"Cmd": cmd},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    layer_digest = reg.blob(repo, layer)
    config_digest = reg.blob(repo, config)
    return reg.manifest(repo, tag, {
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                    "size": len(layer)}]}, MANIFEST)


def push_index(reg: Registry, repo: str, tag: str, images: list[tuple[str, int, str, str]]) -> None:
    """An index of (manifest digest, size, os, arch) entries."""
    reg.manifest(repo, tag, {"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": MANIFEST, "digest": d, "size": n, "platform": {"os": o, "architecture": a}}
        for d, n, o, a in images]}, INDEX)
