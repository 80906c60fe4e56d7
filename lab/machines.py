"""The local lab: real machines on this computer, as containers on one bridge.

    build1, build2   fresh droplets: systemd, sshd (key login), Docker + Compose, ufw
    laptop, laptop2  developer machines: sshd, docker CLI + engine, buildx
    intruder         a machine on the same network that is not a client
    registry         Debian's docker-registry over TLS (lab CA), htpasswd login

Each droplet has its own address on a fixed subnet, its own SSH host keys
(created at first boot), and its own /var/lib/docker volume. The lab keeps its
operator key, its known_hosts and the registry's CA and login in .lab/ beside
the inventory. Slow artefacts (the droplet image, BuildKit) are cached by the
hash of their inputs, so a warm `lab.up` takes seconds.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from buildkit_ops.engine.local_files import atomic_write
from buildkit_ops.engine.shell import quote
from buildkit_ops.pki import certs as pki

from . import foreign_busybox, registry_push

ROOT = Path(__file__).resolve().parent.parent
LABDIR = ROOT / "lab"
CACHE = Path(os.environ.get("BKOPS_CACHE", "/var/cache/buildkit-ops"))
REGISTRY_PORT = 5000
# The current BuildKit and buildx the lab also runs, built from their Go modules. The newest releases (BuildKit
# v0.35.1, buildx v0.39.1) are not served by the Go module proxy here: `go mod download
# github.com/moby/buildkit@v0.35.1` answers "403 Forbidden ... This module version is not available" (and so for
# buildx@v0.39.1); these are the newest it serves.
CURRENT_BUILDKIT = "v0.35.0"
CURRENT_BUILDX = "v0.38.2"
REGISTRY_USER = "developer"


@dataclass(frozen=True)
class Machine:
    name: str
    host: int       # last octet
    role: str       # droplet | client | intruder | registry


MAX_BUILD_HOSTS = 8
DEFAULT_BUILD_HOSTS = 2
MACHINES = [
    Machine("registry", 5, "registry"),
    # build1..build8 at .11-.18: two by default, more with `lab.up --build-hosts N` (the fleet benchmark)
    *[Machine(f"build{i}", 10 + i, "droplet") for i in range(1, MAX_BUILD_HOSTS + 1)],
    Machine("laptop", 21, "client"),
    Machine("laptop2", 22, "client"),
    Machine("intruder", 31, "intruder"),
]


def default_machines(build_hosts: int = DEFAULT_BUILD_HOSTS) -> list[Machine]:
    """The lab's machines with `build_hosts` build hosts (build1..buildN)."""
    if not 1 <= build_hosts <= MAX_BUILD_HOSTS:
        raise LabError(f"--build-hosts takes 1 to {MAX_BUILD_HOSTS}, not {build_hosts}")
    return [m for m in MACHINES if m.role != "droplet" or m.host - 10 <= build_hosts]


SLOT_SUBNETS = {"b": "10.79.0", "c": "10.81.0"}   # the labs beside the default one (Lab.for_slot)


@dataclass
class Lab:
    """One lab instance. `prefix` and `subnet` let a test run a second, tiny lab; `Lab.for_slot` names the full
    labs the suite runs its lab modules on at once (tests/suite.py)."""
    prefix: str = "bkops"
    subnet: str = "10.77.0"
    state: Path = ROOT / ".lab"
    images: bool = True        # build and publish the BuildKit and proxy images (a tiny lab needs neither)
    _buildctl: Path | None = field(default=None, init=False, repr=False)  # a static buildctl for clients

    @classmethod
    def for_slot(cls, slot: str) -> Lab:
        """The lab of a slot: "" is the lab of inventory.yml (10.77.0.0/24, .lab); "b" and "c" are more beside it
        (10.79.0.0/24 and 10.81.0.0/24, .lab-b and .lab-c, containers bkopsb-* and bkopsc-*), whose tests get
        inventory.yml with their addresses and paths (translate). 10.78.0.0/24 is test_lab's tiny lab's."""
        if slot == "":
            return cls()
        if slot in SLOT_SUBNETS:
            return cls(prefix=f"bkops{slot}", subnet=SLOT_SUBNETS[slot], state=ROOT / f".lab-{slot}")
        raise LabError(f"no lab slot {slot!r}: the slots are '' (the default lab), " + ", ".join(
            repr(s) for s in SLOT_SUBNETS))

    def translate(self, text: str) -> str:
        """inventory.yml's text (or a README line) for this lab: its addresses, its state folder, its PKI."""
        default = Lab()
        if self.subnet == default.subnet:
            return text
        return (text.replace(f"{default.subnet}.", f"{self.subnet}.")
                .replace(f"{default.state.name}/", f"{self.state.name}/")
                .replace("pki_dir: .pki", f"pki_dir: .pki{self.state.name.removeprefix(default.state.name)}"))

    # ------------------------------------------------------------ naming
    @property
    def network(self) -> str:
        return f"{self.prefix}-lab"

    def container(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def address(self, name: str) -> str:
        return f"{self.subnet}.{self.machine(name).host}"

    def machine(self, name: str) -> Machine:
        for m in MACHINES:
            if m.name == name:
                return m
        raise LabError(f"no lab machine named {name!r}; the lab has: {', '.join(m.name for m in MACHINES)}")

    @property
    def registry(self) -> str:
        return f"{self.address('registry')}:{REGISTRY_PORT}"

    @property
    def label(self) -> str:
        return f"org.buildkit-ops.lab={self.prefix}"

    # ------------------------------------------------------------ up
    def up(self, names: list[str] | None = None, log=print, build_hosts: int = DEFAULT_BUILD_HOSTS) -> dict:
        t0 = time.monotonic()
        machines = [self.machine(n) for n in names] if names else default_machines(build_hosts)
        self.state.mkdir(parents=True, exist_ok=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        self._operator_key()
        with _images_lock():   # labs coming up at once (the suite's) build each cached image once
            droplet_tag = self._droplet_image(log)
            if self.images:
                self._buildkit_image(log)
                self._haproxy_image(log, droplet_tag)
        self._network()
        self._fence_link_local()
        if any(m.role == "registry" for m in machines):
            self._registry_files()
        with ThreadPoolExecutor(max_workers=len(machines)) as pool:
            list(pool.map(lambda m: self._start(m, droplet_tag), machines))
        with ThreadPoolExecutor(max_workers=len(machines)) as pool:
            list(pool.map(self._ready, machines))
        self._write_known_hosts()
        if any(m.role == "registry" for m in machines):
            self._seed_registry(log)
        took = time.monotonic() - t0
        log(f"lab is up in {took:.1f}s: " + ", ".join(f"{m.name}={self.address(m.name)}" for m in machines))
        return self.status()

    def lab_id(self) -> str:
        f = self.state / "lab-id"
        if not f.exists():
            atomic_write(f, f"{self.state.resolve()}#{secrets.token_hex(8)}".encode())
        return f.read_text()

    def _operator_key(self) -> None:
        key = self.state / "ssh" / "id_ed25519"
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "buildkit-ops lab operator", "-f", str(key)])

    def _droplet_image(self, log) -> str:
        tag = f"buildkit-ops/droplet:{tree_hash(LABDIR / 'droplet')}"
        if not image_exists(tag):
            log(f"building the droplet image {tag} (debootstrap, about 90 s; cached afterwards)")
            sh(["bash", str(LABDIR / "droplet" / "build.sh"), tag], stdout=sys.stderr)
            # older builds of the image are stale cache now (one still used by a container stays)
            for old in sh(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "buildkit-ops/droplet"],
                          capture=True).stdout.split():
                if old != tag:
                    sh(["docker", "rmi", old], check=False, capture=True)
        return tag

    def _buildkit_image(self, log) -> Path:
        # the binaries are keyed by their build script, the image by both scripts
        bindir = CACHE / f"buildkit-bin-{tree_hash(LABDIR / 'buildkit_build.py')}"
        key = tree_hash(LABDIR / "buildkit_build.py", LABDIR / "buildkit-image.sh")
        self._buildctl = bindir / "buildctl"
        archive = CACHE / f"buildkit-image-{key}.tar"
        tag = "buildkit-ops/buildkit:v0.13.2"
        if not archive.exists():
            if not (bindir / "buildctl").exists():
                log("compiling BuildKit v0.13.2 from Debian's docker.io source (about 3 min; cached afterwards)")
                tmp = bindir.with_suffix(".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                sh([sys.executable, str(LABDIR / "buildkit_build.py"), str(tmp)], stdout=sys.stderr)
                os.replace(tmp, bindir)
            sh(["bash", str(LABDIR / "buildkit-image.sh"), str(bindir), tag])
            tmp_archive = quote(f"{archive}.tmp")
            sh(["sh", "-c", f"docker save {quote(tag)} > {tmp_archive} && mv {tmp_archive} {quote(str(archive))}"])
            for stale in CACHE.glob("buildkit-image-*.tar"):  # archives of older inputs
                if stale != archive:
                    stale.unlink()
        return self._publish(archive, "buildkit.tar")

    def current_buildkit(self, log=print) -> Path:
        """The lab's second BuildKit, the current release (CURRENT_BUILDKIT), built from its Go module: the image
        archive, published as .lab/images/buildkit-current.tar. Built on first use (about 4 min), then cached."""
        bindir = CACHE / f"buildkit-bin-{CURRENT_BUILDKIT}"
        key = tree_hash(LABDIR / "go_module_build.py", LABDIR / "buildkit-image.sh")[:12]
        archive = CACHE / f"buildkit-image-{CURRENT_BUILDKIT}-{key}.tar"
        if not archive.exists():
            if not (bindir / "buildctl").exists():
                log(f"compiling BuildKit {CURRENT_BUILDKIT} from its Go module (about 4 min; cached afterwards)")
                sh([sys.executable, str(LABDIR / "go_module_build.py"), "github.com/moby/buildkit", CURRENT_BUILDKIT,
                    str(bindir), "./cmd/buildkitd", "./cmd/buildctl"], stdout=sys.stderr)
            tag = f"buildkit-ops/buildkit:{CURRENT_BUILDKIT}"
            sh(["bash", str(LABDIR / "buildkit-image.sh"), str(bindir), tag])
            tmp_archive = quote(f"{archive}.tmp")
            sh(["sh", "-c", f"docker save {quote(tag)} > {tmp_archive} && mv {tmp_archive} {quote(str(archive))}"])
            for stale in CACHE.glob(f"buildkit-image-{CURRENT_BUILDKIT}-*.tar"):
                if stale != archive:
                    stale.unlink()
        return self._publish(archive, "buildkit-current.tar")

    def current_buildx(self, log=print) -> Path:
        """A current buildx (CURRENT_BUILDX) built from its Go module, for the clients that test it."""
        bindir = CACHE / f"buildx-bin-{CURRENT_BUILDX}"
        if not (bindir / "buildx").exists():
            log(f"compiling buildx {CURRENT_BUILDX} from its Go module (about 4 min; cached afterwards)")
            sh([sys.executable, str(LABDIR / "go_module_build.py"), "github.com/docker/buildx", CURRENT_BUILDX,
                str(bindir), "./cmd/buildx"], stdout=sys.stderr)
        return bindir / "buildx"

    def _haproxy_image(self, log, droplet_tag: str) -> Path:
        """The clients' failover proxy (inventory: failover_image_archive), from Debian's haproxy."""
        key = tree_hash(LABDIR / "haproxy-image.sh")[:8] + "-" + droplet_tag.rsplit(":", 1)[1][:8]
        archive = CACHE / f"haproxy-image-{key}.tar"
        if not archive.exists():
            log("building the failover proxy image from Debian's haproxy (about 10 s; cached afterwards)")
            tag = "buildkit-ops/haproxy:lab"
            sh(["bash", str(LABDIR / "haproxy-image.sh"), droplet_tag, tag], capture=True)
            tmp_archive = quote(f"{archive}.tmp")
            sh(["sh", "-c", f"docker save {quote(tag)} > {tmp_archive} && mv {tmp_archive} {quote(str(archive))}"])
            for stale in CACHE.glob("haproxy-image-*.tar"):
                if stale != archive:
                    stale.unlink()
        return self._publish(archive, "haproxy.tar")

    def _publish(self, archive: Path, name: str) -> Path:
        """The cached archive as .lab/images/NAME (a hard link: the inventory's image archives point there)."""
        dest = self.state / "images" / name
        if not dest.exists() or dest.stat().st_ino != archive.stat().st_ino:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(archive, tmp)
            except OSError:
                shutil.copy(archive, tmp)
            os.replace(tmp, dest)
        return dest

    @property
    def subnet6(self) -> str:
        """The lab's IPv6 network (unique local addresses), derived from the IPv4 one."""
        return "fd00:" + ":".join(self.subnet.split(".")) + "::"

    def address6(self, name: str) -> str:
        return f"{self.subnet6}{self.machine(name).host}"

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"[:15]

    def _network(self) -> None:
        r = sh(["docker", "network", "inspect", self.network], check=False, capture=True)
        if r.returncode == 0:
            net = json.loads(r.stdout)[0]
            if net.get("EnableIPv6") and net["Options"].get("com.docker.network.bridge.name") == self.bridge:
                return
            for m in MACHINES:  # a network of an older lab (IPv4 only): its machines go with it
                self._remove(m.name)
            sh(["docker", "network", "rm", self.network], capture=True)
        sh(["docker", "network", "create", "--subnet", f"{self.subnet}.0/24", "--gateway", f"{self.subnet}.1",
            "--ipv6", "--subnet", f"{self.subnet6}/64", "--gateway", f"{self.subnet6}1",
            "-o", f"com.docker.network.bridge.name={self.bridge}", "--label", self.label, self.network],
           capture=True)

    def _fence_link_local(self) -> None:
        """Nothing from the lab reaches link-local addresses (169.254.0.0/16: cloud metadata services) through
        this machine, which may have such services of its own: dropped where the lab's bridge enters it."""
        for chain in ("DOCKER-USER", "INPUT"):
            rule = [chain, "-i", self.bridge, "-d", "169.254.0.0/16", "-j", "DROP"]
            if sh(["iptables", "-C", *rule], check=False, capture=True).returncode != 0:
                sh(["iptables", "-I", *rule], capture=True)

    def _registry_files(self) -> None:
        d = self.state / "registry"
        if (d / "htpasswd").exists():
            return
        ca = pki.create_ca(d / "ca", 3650, name="lab registry CA")
        crt, key = pki.issue(ca, "registry", 825, server_names=[self.address("registry"), "registry.lab"])
        atomic_write(d / "server.crt", crt)
        atomic_write(d / "server.key", key, 0o644)  # read by the registry process inside its container
        shutil.copy(d / "ca" / "ca.crt", d / "ca.crt")
        password = secrets.token_urlsafe(18)
        atomic_write(d / "password", password.encode(), 0o600)
        (d / "config.yml").write_text(REGISTRY_CONFIG)
        tag = f"buildkit-ops/droplet:{tree_hash(LABDIR / 'droplet')}"
        out = sh(["docker", "run", "--rm", "--entrypoint", "htpasswd", tag, "-Bbn", REGISTRY_USER, password],
                 capture=True).stdout
        atomic_write(d / "htpasswd", out.strip().encode() + b"\n", 0o644)

    def _running(self, name: str) -> dict | None:
        r = sh(["docker", "inspect", self.container(name)], check=False, capture=True)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)[0]

    def _start(self, m: Machine, image: str) -> None:
        c = self.container(m.name)
        info = self._running(m.name)
        # the state directory's own random id: a directory made anew (a fresh clone at the same path) gets
        # new machines, since the old ones hold keys and mounts of the old directory
        want_state = self.lab_id()
        if info:
            labels = info["Config"]["Labels"] or {}
            same = info["Config"]["Image"] == image and labels.get("org.buildkit-ops.state") == want_state
            if same and info["State"]["Running"]:
                return
            if same:
                sh(["docker", "start", c], capture=True)
                return
            self._remove(m.name)
        args = ["docker", "run", "-d", "--name", c, "--hostname", m.name, "--network", self.network,
                "--ip", self.address(m.name), "--ip6", self.address6(m.name), "--label", self.label,
                "--label", f"org.buildkit-ops.state={want_state}", "--label", f"org.buildkit-ops.machine={m.name}"]
        if m.role == "registry":
            args += ["-v", f"{self.state.resolve() / 'registry'}:/etc/docker/registry:ro",
                     "-v", f"{c}-data:/var/lib/docker-registry", "--restart", "unless-stopped",
                     "--entrypoint", "/usr/bin/docker-registry", image, "serve", "/etc/docker/registry/config.yml"]
        else:
            args += DROPLET_FLAGS + ["-v", f"{c}-docker:/var/lib/docker", "-v", f"{c}-containerd:/var/lib/containerd",
                                     image]
        sh(args, capture=True)

    def _ready(self, m: Machine, timeout: float = 90) -> None:
        c = self.container(m.name)
        deadline = time.monotonic() + timeout
        if m.role == "registry":
            check = f"nc -z 127.0.0.1 {REGISTRY_PORT}"
        else:
            check = ("test -s /etc/ssh/ssh_host_ed25519_key.pub && systemctl is-active -q ssh"
                     + (" && systemctl is-active -q docker" if m.role != "intruder" else ""))
        while True:
            if sh(["docker", "exec", c, "sh", "-c", check], check=False, capture=True).returncode == 0:
                break
            if time.monotonic() > deadline:
                logs = sh(["docker", "logs", "--tail", "30", c], check=False, capture=True)
                raise LabError(f"{m.name} did not become ready in {timeout:.0f}s ({check}):\n"
                               f"{logs.stdout}{logs.stderr}")
            time.sleep(0.3)
        if m.role == "registry":
            return
        pub = (self.state / "ssh" / "id_ed25519.pub").read_text()
        setup = ("install -d -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys.tmp && "
                 "chmod 600 /root/.ssh/authorized_keys.tmp && "
                 "mv /root/.ssh/authorized_keys.tmp /root/.ssh/authorized_keys")
        sh(["docker", "exec", "-i", c, "sh", "-c", setup], input=pub, capture=True)
        if m.role in ("client", "intruder") and self._buildctl and self._buildctl.exists():
            # a developer's BuildKit CLI, for talking to build hosts directly
            sh(["docker", "cp", str(self._buildctl), f"{c}:/usr/local/bin/buildctl"], capture=True)
        if m.role == "client" and (self.state / "registry" / "ca.crt").exists():
            ca = (self.state / "registry" / "ca.crt").read_text()
            d = quote(f"/etc/docker/certs.d/{self.registry}")
            # dockerd's builder reads certs.d when it starts: restart it when the CA is new
            sh(["docker", "exec", "-i", c, "sh", "-c",
                f"mkdir -p {d} && cat > {d}/ca.new && if cmp -s {d}/ca.new {d}/ca.crt; then rm {d}/ca.new; "
                f"else mv {d}/ca.new {d}/ca.crt && systemctl restart docker; fi"], input=ca, capture=True)
            # buildx itself merges a multi-platform image's index on the client (`imagetools`), with the
            # system's trust store: a real registry's CA is there, so the lab's goes there too
            sh(["docker", "exec", "-i", c, "sh", "-c",
                "cat > /usr/local/share/ca-certificates/lab-registry.crt && update-ca-certificates >/dev/null"],
               input=ca, capture=True)

    def _write_known_hosts(self) -> None:
        lines = []
        for m in MACHINES:
            if m.role == "registry" or not self._running(m.name):
                continue
            # The host key is read out of band (docker exec), never accepted on first SSH contact.
            r = sh(["docker", "exec", self.container(m.name), "cat", "/etc/ssh/ssh_host_ed25519_key.pub"],
                   capture=True, check=False)
            if r.returncode == 0:
                kt, key = r.stdout.split()[:2]
                lines.append(f"{self.address(m.name)} {kt} {key}\n")
        atomic_write(self.state / "known_hosts", "".join(lines).encode())

    def _seed_registry(self, log) -> None:
        """Push small busybox images, so builds with RUN steps work without Docker Hub: lab/busybox:latest
        (this machine's, amd64) and lab/busybox:multiarch, an index of it and Debian's arm64 busybox (for
        builds of several platforms; the arm64 one runs on an emulating host)."""
        if self._registry_has("lab/busybox", "multiarch"):
            return
        d = self.state / "registry"
        token = base64.b64encode(f"{REGISTRY_USER}:{(d / 'password').read_text()}".encode()).decode()
        reg = registry_push.Registry(self.registry, f"Basic {token}",
                                     ssl.create_default_context(cafile=str(d / "ca.crt")))
        images = []
        for arch, binary in (("amd64", Path("/bin/busybox")), ("arm64", foreign_busybox.busybox("arm64", CACHE))):
            digest, size = registry_push.push_image(reg, "lab/busybox", "latest" if arch == "amd64" else arch,
                                                    busybox_rootfs(binary), "linux", arch, ["/bin/sh"])
            images.append((digest, size, "linux", arch))
        registry_push.push_index(reg, "lab/busybox", "multiarch", images)
        log(f"registry seeded with {self.registry}/lab/busybox:latest (amd64) and :multiarch (amd64, arm64)")

    def _registry_has(self, repo: str, tag: str) -> bool:
        d = self.state / "registry"
        ctx = ssl.create_default_context(cafile=str(d / "ca.crt"))
        req = urllib.request.Request(f"https://{self.registry}/v2/{repo}/manifests/{tag}", method="HEAD")
        token = base64.b64encode(f"{REGISTRY_USER}:{(d / 'password').read_text()}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        req.add_header("Accept", ",".join([registry_push.INDEX, registry_push.MANIFEST,
                                           "application/vnd.docker.distribution.manifest.v2+json"]))
        for _ in range(20):
            try:
                with urllib.request.urlopen(req, context=ctx, timeout=5):
                    return True
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    return False
                raise LabError(f"the lab registry answered {e.code} to {req.full_url}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        raise LabError(f"the lab registry at {self.registry} does not answer")

    def reset(self, name: str) -> None:
        """Replace one machine by a fresh one (new disk, new host keys), as if the droplet were recreated."""
        m = self.machine(name)
        self._remove(name)
        self._start(m, f"buildkit-ops/droplet:{tree_hash(LABDIR / 'droplet')}")
        self._ready(m)
        self._write_known_hosts()

    # ------------------------------------------------------------ status, run, down
    def status(self) -> dict:
        machines = {}
        for m in MACHINES:
            info = self._running(m.name)
            machines[m.name] = {"address": self.address(m.name), "address6": self.address6(m.name), "role": m.role,
                                "state": (info["State"]["Status"] if info else "absent")}
        reg = {"address": self.registry, "username": REGISTRY_USER, "password": None,
               "ca": str(self.state / "registry" / "ca.crt")}
        pw = self.state / "registry" / "password"
        if pw.exists():
            reg["password"] = pw.read_text()
        return {"network": self.network, "machines": machines, "registry": reg,
                "ssh_key": str(self.state / "ssh" / "id_ed25519"), "known_hosts": str(self.state / "known_hosts")}

    def run(self, name: str, command: str, capture: bool = False, input: str | None = None):
        self.machine(name)
        if not self._running(name):
            raise LabError(f"lab machine {name} is not running; start the lab with `invoke lab.up`")
        args = ["docker", "exec", "-i" if input is not None else "-t" if sys.stdin.isatty() and not capture else "-i",
                self.container(name), "sh", "-c", command]
        return subprocess.run(args, text=True, input=input, capture_output=capture,
                              stdin=None if input is not None or sys.stdin.isatty() else subprocess.DEVNULL)

    def remove(self, name: str) -> None:
        """Delete one machine and its disks (a droplet destroyed), e.g. a build host a test added."""
        self._remove(name)
        self._write_known_hosts()

    def _remove(self, name: str) -> None:
        c = self.container(name)
        sh(["docker", "rm", "-f", "-v", c], check=False, capture=True)
        for suffix in ("docker", "containerd", "data"):
            sh(["docker", "volume", "rm", "-f", f"{c}-{suffix}"], check=False, capture=True)

    def down(self, log=print) -> None:
        for m in MACHINES:
            self._remove(m.name)
        sh(["docker", "network", "rm", self.network], check=False, capture=True)
        certs = Path(f"/etc/docker/certs.d/{self.registry}")
        shutil.rmtree(certs, ignore_errors=True)
        shutil.rmtree(self.state, ignore_errors=True)  # the lab's key, known_hosts, registry login, image link
        log(f"lab {self.prefix} is down (cached images kept: docker images 'buildkit-ops/*'; "
            f"the PKI in the inventory's pki_dir is not the lab's and stays)")

    def leftovers(self) -> list[str]:
        """Everything of this lab's that still exists (what `down` must leave empty)."""
        out = []
        for kind in ("container", "volume", "network"):
            args = ["docker", kind, "ls", "-q", "--filter", f"label={self.label}"]
            if kind == "container":
                args = ["docker", "ps", "-aq", "--filter", f"label={self.label}"]
            out += [f"{kind} {x}" for x in sh(args, capture=True).stdout.split()]
        for m in MACHINES:
            for suffix in ("docker", "containerd", "data"):
                v = f"{self.container(m.name)}-{suffix}"
                if sh(["docker", "volume", "inspect", v], check=False, capture=True).returncode == 0:
                    out.append(f"volume {v}")
        return out


DROPLET_FLAGS = [
    # `--privileged` fails on this kind of machine (root lacks CAP_SYS_RESOURCE); this is the working equivalent.
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined", "--device-cgroup-rule", "a *:* rwm",
    "--cgroupns", "private", "--tmpfs", "/run", "--tmpfs", "/run/lock", "--stop-signal", "SIGRTMIN+3",
    "-e", "container=docker",
]
BUSYBOX_APPS = ["sh", "ls", "cat", "echo", "mkdir", "rm", "cp", "mv", "sleep", "date", "env", "grep", "sed",
                "head", "tail", "wc", "touch", "dd", "sha256sum", "true", "false", "uname", "id", "find", "tar"]
REGISTRY_CONFIG = """\
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
  tls:
    certificate: /etc/docker/registry/server.crt
    key: /etc/docker/registry/server.key
auth:
  htpasswd:
    realm: buildkit-ops-lab
    path: /etc/docker/registry/htpasswd
"""


class LabError(Exception):
    pass


def busybox_rootfs(binary: Path) -> bytes:
    """A tar of a tiny root filesystem: busybox, its applets as symlinks, /tmp, /etc/passwd."""
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name: str, kind: bytes, data: bytes = b"", mode: int = 0o755, link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.size, info.linkname = kind, mode, len(data), link
            tar.addfile(info, io.BytesIO(data) if data else None)
        for dname in ("bin", "tmp", "etc", "root"):
            add(dname, tarfile.DIRTYPE, mode=0o1777 if dname == "tmp" else 0o755)
        add("bin/busybox", tarfile.REGTYPE, binary.read_bytes())
        for app in BUSYBOX_APPS:
            add(f"bin/{app}", tarfile.SYMTYPE, link="busybox", mode=0o777)
        add("etc/passwd", tarfile.REGTYPE, b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
    return buf.getvalue()


@contextlib.contextmanager
def _images_lock():
    with open(CACHE / "lab-images.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def sh(args, check=True, capture=False, input=None, env=None, stdout=None):
    r = subprocess.run(args, text=True, input=input, env=env,
                       stdout=subprocess.PIPE if capture else stdout, stderr=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        raise LabError(f"command failed ({r.returncode}): {' '.join(map(str, args))}\n{r.stderr or ''}")
    return r


def image_exists(tag: str) -> bool:
    return sh(["docker", "image", "inspect", tag], check=False, capture=True).returncode == 0


def tree_hash(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        files = sorted(p.rglob("*")) if p.is_dir() else [p]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]
