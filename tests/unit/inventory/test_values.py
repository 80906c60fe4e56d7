"""The first wall: every hostile or wrong inventory value is refused at load, with the file, the key path,
what is wrong and how to fix it (exact messages), before anything connects anywhere.

One case per injection class found in the trust-boundary review (TOML, YAML, systemd, shell, firewall,
paths) and their obvious neighbours. The second wall (rendering that escapes even unvalidated values)
is tested in test_rendering.py."""
from __future__ import annotations

import re

import pytest
import yaml
from unit_helpers import client_values as client
from unit_helpers import load_text, mutate, refusal
from unit_helpers import top_values as top


def bk(**kw):
    return lambda d: d["all"]["vars"].setdefault("buildkit", {}).update(kw)
def gc(**kw):
    return lambda d: d["all"]["vars"].setdefault("buildkit", {}).setdefault("gc", {}).update(kw)
def host(**kw):
    return lambda d: d["all"]["children"]["buildhosts"]["hosts"]["build1"].update(kw)
def new_host(name):
    return lambda d: d["all"]["children"]["buildhosts"]["hosts"].update({name: {"address": "10.0.0.9"}})
def vpn_client(**kw):
    def edit(d):
        d["all"]["vars"]["vpn"] = {"kind": "wireguard"}
        d["all"]["children"]["clients"]["hosts"]["laptop"].update(kw)
    return edit
def new_client(name):
    return lambda d: d["all"]["children"]["clients"]["hosts"].update({name: {"address": "10.0.0.9"}})


BAD = [
    ("version with a newline adds a top-level key", bk(version='v0.13.2\ninsecure-entitlements = ["security.insecure"]'),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.version: \'v0.13.2\\ninsecure-entitlements = ["security.insecure"]\' is not a BuildKit version (vMAJOR.MINOR.PATCH)\n  fix: write it as v0.13.2'),
    ("version not semver", bk(version="0.13"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.version: '0.13' is not a BuildKit version (vMAJOR.MINOR.PATCH)\n  fix: write it as v0.13.2"),
    ("version with trailing newline", bk(version="v0.13.2\n"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.version: 'v0.13.2\\n' is not a BuildKit version (vMAJOR.MINOR.PATCH)\n  fix: write it as v0.13.2"),
    ("image with a newline adds compose keys", bk(image="moby/buildkit:v0.13.2\n    pid: host"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.image: 'moby/buildkit:v0.13.2\\n    pid: host' is not an image reference\n  fix: write [registry/]repository:tag or repository@sha256:<64 hex digits>, e.g. moby/buildkit:v0.13.2"),
    ("image with a quote", bk(image='moby/buildkit:v0.13.2"'),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.image: \'moby/buildkit:v0.13.2"\' is not an image reference\n  fix: write [registry/]repository:tag or repository@sha256:<64 hex digits>, e.g. moby/buildkit:v0.13.2'),
    ("image without tag or digest", bk(image="moby/buildkit"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.image: 'moby/buildkit' is not pinned\n  fix: add a tag or a digest, e.g. moby/buildkit:v0.13.2"),
    ("image with upper case repository", bk(image="Moby/BuildKit:v1"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.image: 'Moby/BuildKit:v1' is not an image reference\n  fix: write [registry/]repository:tag or repository@sha256:<64 hex digits>, e.g. moby/buildkit:v0.13.2"),
    ("image with a bad digest", bk(image="moby/buildkit@sha256:1234"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.image: 'moby/buildkit@sha256:1234' is not an image reference\n  fix: write [registry/]repository:tag or repository@sha256:<64 hex digits>, e.g. moby/buildkit:v0.13.2"),
    ("image with compose interpolation", bk(image="moby/buildkit:${HOME}"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.image: 'moby/buildkit:${HOME}' is not an image reference\n  fix: write [registry/]repository:tag or repository@sha256:<64 hex digits>, e.g. moby/buildkit:v0.13.2"),
    ("data_dir with a shell command", bk(data_dir="/opt/x; rm -rf /"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.data_dir: '/opt/x; rm -rf /' is not an absolute path from a safe character set\n  fix: write an absolute path of letters, digits, '.', '_', '-' and '/', such as /opt/buildkit-ops"),
    ("data_dir relative", bk(data_dir="opt/buildkit"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.data_dir: 'opt/buildkit' is not an absolute path from a safe character set\n  fix: write an absolute path of letters, digits, '.', '_', '-' and '/', such as /opt/buildkit-ops"),
    ("data_dir with dot-dot", bk(data_dir="/opt/../etc"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.data_dir: '/opt/../etc' has a '.' or '..' component\n  fix: write an absolute path of letters, digits, '.', '_', '-' and '/', such as /opt/buildkit-ops"),
    ("data_dir with a newline", bk(data_dir="/opt/buildkit\n/etc"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.data_dir: '/opt/buildkit\\n/etc' is not an absolute path from a safe character set\n  fix: write an absolute path of letters, digits, '.', '_', '-' and '/', such as /opt/buildkit-ops"),
    ("data_dir with a space", bk(data_dir="/opt/build kit"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.data_dir: '/opt/build kit' is not an absolute path from a safe character set\n  fix: write an absolute path of letters, digits, '.', '_', '-' and '/', such as /opt/buildkit-ops"),
    ("debug_address on every interface", bk(debug_address="0.0.0.0:6060"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.debug_address: '0.0.0.0:6060' is not a loopback ip:port: build steps and the network must not reach the debug listener\n  fix: write 127.0.0.1:6060 (or leave the key out: no debug listener)"),
    ("debug_address with a quote and a table", bk(debug_address='127.0.0.1:6060"\n[grpc]\naddress = ["tcp://0.0.0.0:9999"]'),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.debug_address: \'127.0.0.1:6060"\\n[grpc]\\naddress = ["tcp://0.0.0.0:9999"]\' is not a loopback ip:port: build steps and the network must not reach the debug listener\n  fix: write 127.0.0.1:6060 (or leave the key out: no debug listener)'),
    ("debug_address without a port", bk(debug_address="127.0.0.1"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.debug_address: '127.0.0.1' is not a loopback ip:port: build steps and the network must not reach the debug listener\n  fix: write 127.0.0.1:6060 (or leave the key out: no debug listener)"),
    ("debug_address port out of range", bk(debug_address="127.0.0.1:70000"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.debug_address: '127.0.0.1:70000' is not a loopback ip:port: build steps and the network must not reach the debug listener\n  fix: write 127.0.0.1:6060 (or leave the key out: no debug listener)"),
    ("step_network unknown", bk(step_network="bridge"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.step_network: 'bridge' is not allowed\n  fix: use one of: sandboxed, host"),
    ("GC filter with a quote and a table", gc(policies=[{"filters": ['type==x"]\n[grpc]\naddress = ["tcp://0.0.0.0:1"']}]),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.gc.policies[0].filters[0]: \'type==x"]\\n[grpc]\\naddress = ["tcp://0.0.0.0:1"\' is not a BuildKit filter\n  fix: write it as type==source.local, type!=regular or description~=npm'),
    ("GC filter without an operator", gc(policies=[{"filters": ["type"]}]),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.gc.policies[0].filters[0]: 'type' is not a BuildKit filter\n  fix: write it as type==source.local, type!=regular or description~=npm"),
    ("GC filter with a space", gc(policies=[{"filters": ["type==source local"]}]),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.gc.policies[0].filters[0]: 'type==source local' is not a BuildKit filter\n  fix: write it as type==source.local, type!=regular or description~=npm"),
    ("GC filters not a list", gc(policies=[{"filters": "type==source.local"}]),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.gc.policies[0].filters: must be a list, got 'type==source.local'\n  fix: write it as [a, b]"),
    ("GC keep_bytes negative", gc(policies=[{"keep_bytes": -5}]),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.gc.policies[0].keep_bytes: -5 is not a disk space\n  fix: write a size such as 10GB or 512MiB, or a share of the disk such as \"10%\"'),
    ("GC keep_storage with trailing newline", gc(keep_storage="10GB\n"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.gc.keep_storage: '10GB\\n' is not a disk space\n  fix: write a size such as 10GB or 512MiB, or a share of the disk such as \"10%\""),
    ("prune filter balancing systemd quotes", bk(prune_schedule={"calendar": "daily", "filters": ["type==x\\'\nExecStartPre=/bin/sh -c id"]}),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.prune_schedule.filters[0]: "type==x\\\\\'\\nExecStartPre=/bin/sh -c id" is not a BuildKit filter\n  fix: write it as type==source.local, type!=regular or description~=npm'),
    ("prune calendar with a newline", bk(prune_schedule={"calendar": "daily\nExecStartPre=/bin/true", "keep_storage": "1GB"}),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.prune_schedule.calendar: \'daily\\nExecStartPre=/bin/true\' is not a systemd calendar expression this tool accepts\n  fix: write daily, weekly, "Sun 03:00", "Mon..Fri 02:30" or "*-*-* 04:00:00"'),
    ("prune calendar with a specifier", bk(prune_schedule={"calendar": "%h", "keep_storage": "1GB"}),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.prune_schedule.calendar: \'%h\' is not a systemd calendar expression this tool accepts\n  fix: write daily, weekly, "Sun 03:00", "Mon..Fri 02:30" or "*-*-* 04:00:00"'),
    ("prune calendar free text", bk(prune_schedule={"calendar": "every night", "keep_storage": "1GB"}),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.prune_schedule.calendar: \'every night\' is not a systemd calendar expression this tool accepts\n  fix: write daily, weekly, "Sun 03:00", "Mon..Fri 02:30" or "*-*-* 04:00:00"'),
    ("registry mirror with a quote and a table", bk(registries={"docker.io": {"mirrors": ['m.example.com"]\n[grpc]\naddress = ["tcp://0.0.0.0:1"']}}),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.registries.docker.io.mirrors[0]: \'m.example.com"]\\n[grpc]\\naddress = ["tcp://0.0.0.0:1"\' is not a registry host[:port]\n  fix: write it as registry.example.com, registry.example.com:5000 or 10.0.0.5:5000'),
    ("registry mirror with a path", bk(registries={"docker.io": {"mirrors": ["m.example.com/x"]}}),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.registries.docker.io.mirrors[0]: 'm.example.com/x' is not a registry host[:port]\n  fix: write it as registry.example.com, registry.example.com:5000 or 10.0.0.5:5000"),
    ("registry name with a quote", bk(registries={'r.example.com"]\n[x': {"http": True}}),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.registries.r.example.com"]\\n[x: \'r.example.com"]\\n[x\' is not a registry host[:port]\n  fix: write it as registry.example.com, registry.example.com:5000 or 10.0.0.5:5000'),
    ("registry name with a path", bk(registries={"r.example.com/../../etc": {"http": True}}),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.registries.r.example.com/../../etc: 'r.example.com/../../etc' is not a registry host[:port]\n  fix: write it as registry.example.com, registry.example.com:5000 or 10.0.0.5:5000"),
    ("registry port out of range", bk(registries={"r.example.com:99999": {"http": True}}),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.registries.r.example.com:99999: 'r.example.com:99999' is not a registry host[:port]\n  fix: write it as registry.example.com, registry.example.com:5000 or 10.0.0.5:5000"),
    ("max_parallelism zero", bk(max_parallelism=0),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.max_parallelism: must be a whole number from 1 to 1024, got 0\n  fix: write a number from 1 to 1024, without quotes'),
    ("max_parallelism a string", bk(max_parallelism="4\nx = 1"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.max_parallelism: must be a whole number from 1 to 1024, got '4\\nx = 1'\n  fix: write a number from 1 to 1024, without quotes"),
    ("port a string", bk(port="1234"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.port: must be a TCP port between 1 and 65535, got '1234'\n  fix: write a number such as 1234"),
    ("client address with a zone id and a command", client(address="fe80::1%eth0;reboot"),
     "inv.yml: all.children.clients.hosts.laptop.address: 'fe80::1%eth0;reboot' is not an IP address or network (no names, no zone ids): the firewall opens the port by source address\n  fix: write the address the build hosts see, such as 10.0.0.21, or a network such as 10.0.0.0/24"),
    ("build limit as a second map line", client(limits={"builds": "1\nlaptop2 0"}),
     "inv.yml: all.children.clients.hosts.laptop.limits.builds: must be a whole number from 0 to 1000, got "
     "'1\\nlaptop2 0'\n  fix: write a number from 0 to 1000, without quotes"),
    ("build limits as a word", client(limits="none"),
     "inv.yml: all.children.clients.hosts.laptop.limits: must be a mapping of keys, got str 'none'\n"
     "  fix: write it as `key: value` lines indented under it"),
    ("client address the whole internet", client(address="0.0.0.0/0"),
     "inv.yml: all.children.clients.hosts.laptop.address: '0.0.0.0/0' is every address: the port would be open to the whole internet\n  fix: name the client's own address or its network, such as 10.0.0.0/24"),
    ("client address the whole IPv6 internet", client(address="::/0"),
     "inv.yml: all.children.clients.hosts.laptop.address: '::/0' is every address: the port would be open to the whole internet\n  fix: name the client's own address or its network, such as 10.0.0.0/24"),
    ("client address unspecified", client(address="0.0.0.0"),
     "inv.yml: all.children.clients.hosts.laptop.address: '0.0.0.0' is the unspecified address, not a client\n  fix: write the address the build hosts see, such as 10.0.0.21, or a network such as 10.0.0.0/24"),
    ("client address a name", client(address="laptop.example.com"),
     "inv.yml: all.children.clients.hosts.laptop.address: 'laptop.example.com' is not an IP address or network (no names, no zone ids): the firewall opens the port by source address\n  fix: write the address the build hosts see, such as 10.0.0.21, or a network such as 10.0.0.0/24"),
    ("client address with a trailing newline", client(address="10.0.0.21\n"),
     "inv.yml: all.children.clients.hosts.laptop.address: '10.0.0.21\\n' is not an IP address or network (no names, no zone ids): the firewall opens the port by source address\n  fix: write the address the build hosts see, such as 10.0.0.21, or a network such as 10.0.0.0/24"),
    ("client network without ssh_address", client(address="10.0.0.0/24"),
     'inv.yml: all.children.clients.hosts.laptop.ssh_address: is missing, and address 10.0.0.0/24 is a network, not a machine\n  fix: add `ssh_address:` with the address SSH connects to'),
    ("client builder with a path", client(builder="../../x"),
     "inv.yml: all.children.clients.hosts.laptop.builder: '../../x' is not a buildx builder name\n  fix: start with a letter; then letters, digits, '.', '_' or '-' (e.g. buildkit-ops)"),
    ("client builder with a quote", client(builder='b" --driver-opt "x'),
     'inv.yml: all.children.clients.hosts.laptop.builder: \'b" --driver-opt "x\' is not a buildx builder name\n  fix: start with a letter; then letters, digits, \'.\', \'_\' or \'-\' (e.g. buildkit-ops)'),
    ("client builder starting with a digit", client(builder="1builder"),
     "inv.yml: all.children.clients.hosts.laptop.builder: '1builder' is not a buildx builder name\n  fix: start with a letter; then letters, digits, '.', '_' or '-' (e.g. buildkit-ops)"),
    ("client ssh_user with a space", client(ssh_user="root -o ProxyCommand=x"),
     "inv.yml: all.children.clients.hosts.laptop.ssh_user: 'root -o ProxyCommand=x' is not a user name\n  fix: write a login name such as root or deploy"),
    ("host address with a command", host(address="10.0.0.11;id"),
     "inv.yml: all.children.buildhosts.hosts.build1.address: '10.0.0.11;id' is not an IP address or DNS name\n  fix: write an address such as 10.0.0.5 or build1.example.com"),
    ("host address with a zone id", host(address="fe80::1%eth0"),
     "inv.yml: all.children.buildhosts.hosts.build1.address: 'fe80::1%eth0' is not an IP address or DNS name\n  fix: write an address such as 10.0.0.5 or build1.example.com"),
    ("host address with a trailing newline", host(address="10.0.0.11\n"),
     "inv.yml: all.children.buildhosts.hosts.build1.address: '10.0.0.11\\n' is not an IP address or DNS name\n  fix: write an address such as 10.0.0.5 or build1.example.com"),
    ("private address that is public", host(private_address="198.51.100.7"),
     "inv.yml: all.children.buildhosts.hosts.build1.private_address: '198.51.100.7' is a public address: private mode opens the BuildKit port on a private network only (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7)\n  fix: use the host's address on its private network, or leave private_address out (the port then listens on every address, opened to the clients' addresses only)"),
    ("VPN address wider than the client's own", vpn_client(vpn_address="10.213.0.0/24"),
     "inv.yml: all.children.clients.hosts.laptop.vpn_address: '10.213.0.0/24' is a network, wider than the machine's own tunnel address: its peer would be allowed to send as any address in it (WireGuard's allowed-ips)\n  fix: leave the key out (buildkit-ops chooses one and writes it here), or write one address such as 10.213.0.7"),
    ("host name with a trailing newline", new_host("build2\n"),
     "inv.yml: all.children.buildhosts.hosts.build2\\n: 'build2\\n' is not a valid host name\n  fix: use lower-case letters, digits and dashes, starting with a letter or digit"),
    ("host name with a slash", new_host("../b"),
     "inv.yml: all.children.buildhosts.hosts.../b: '../b' is not a valid host name\n  fix: use lower-case letters, digits and dashes, starting with a letter or digit"),
    ("host names with a bad entry", host(names=["build1.lab", "x y"]),
     "inv.yml: all.children.buildhosts.hosts.build1.names[1]: 'x y' is not an IP address or DNS name\n  fix: write an address such as 10.0.0.5 or build1.example.com"),
    ("ssh_user with a newline", host(ssh_user="root\nid"),
     "inv.yml: all.children.buildhosts.hosts.build1.ssh_user: 'root\\nid' is not a user name\n  fix: write a login name such as root or deploy"),
    ("connect_timeout zero", host(connect_timeout=0),
     'inv.yml: all.children.buildhosts.hosts.build1.connect_timeout: must be a whole number from 1 to 300, got 0\n  fix: write a number from 1 to 300, without quotes'),
    ("client name with upper case", new_client("Laptop"),
     "inv.yml: all.children.clients.hosts.Laptop: 'Laptop' is not a valid client name\n  fix: use lower-case letters, digits and dashes (it becomes the certificate's CN)"),
    ("pki_dir with a newline", top(pki_dir=".pki\n"),
     "inv.yml: all.vars.pki_dir: '.pki\\n' holds a control character\n  fix: write a plain path"),
    ("cert_days a string", top(cert_days="825"),
     "inv.yml: all.vars.cert_days: must be a whole number, got '825'\n  fix: write a number, without quotes"),

    ("extra name with a newline", host(names=["build1.example.com\nExecStart=/bin/sh"]),
     "inv.yml: all.children.buildhosts.hosts.build1.names[0]: 'build1.example.com\\nExecStart=/bin/sh' is not an IP address or DNS name\n  fix: write an address such as 10.0.0.5 or build1.example.com"),
    ("history age in words", bk(history_max_age="7 days"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.history_max_age: '7 days' is not a duration\n  fix: write a duration such as 48h, 30m or 7d"),
    ("emulated platform with a shell word", host(emulate=["linux/arm64;id"]),
     "inv.yml: all.children.buildhosts.hosts.build1.emulate[0]: 'linux/arm64;id' is not a platform (os/arch[/variant])\n  fix: write it as linux/amd64, linux/arm64 or linux/arm/v7"),
    ("tenant with a shell word", client(tenant="red;id"),
     "inv.yml: all.children.clients.hosts.laptop.tenant: 'red;id' is not a tenant name\n  fix: use 1 to 20 lower-case letters, digits and dashes, starting with a letter, e.g. red"),
    ("home with a shell word", client(home="build1;id"),
     "inv.yml: all.children.clients.hosts.laptop.home: 'build1;id' is not a valid name (lower-case letters, digits and dashes)\n  fix: use lower-case letters, digits and dashes, starting and ending with a letter or digit"),
    ("platform with a newline", host(platforms=["linux/amd64\n[grpc]"]),
     "inv.yml: all.children.buildhosts.hosts.build1.platforms[0]: 'linux/amd64\\n[grpc]' is not a platform (os/arch[/variant])\n  fix: write it as linux/amd64, linux/arm64 or linux/arm/v7"),
    ("half the internet as a client", client(address="128.0.0.0/1", ssh_address="10.0.0.21"),
     "inv.yml: all.children.clients.hosts.laptop.address: 128.0.0.0/1 is a network wider than /16: a client certificate that leaks would reach the BuildKit port from anywhere in it\n  fix: name the client's own address or a network of at most /16, or set `allow_wide_network: true` on this client if so wide a network is meant"),
    ("a quarter of the internet as a client", client(address="64.0.0.0/2", ssh_address="10.0.0.21"),
     "inv.yml: all.children.clients.hosts.laptop.address: 64.0.0.0/2 is a network wider than /16: a client certificate that leaks would reach the BuildKit port from anywhere in it\n  fix: name the client's own address or a network of at most /16, or set `allow_wide_network: true` on this client if so wide a network is meant"),
    ("an eighth of IPv6 as a client", client(address="2000::/3", ssh_address="10.0.0.21"),
     "inv.yml: all.children.clients.hosts.laptop.address: 2000::/3 is a network wider than /32: a client certificate that leaks would reach the BuildKit port from anywhere in it\n  fix: name the client's own address or a network of at most /32, or set `allow_wide_network: true` on this client if so wide a network is meant"),
    ("1.0.0.0/1 is not the unspecified address", client(address="1.0.0.0/1", ssh_address="10.0.0.21"),
     "inv.yml: all.children.clients.hosts.laptop.address: 0.0.0.0/1 is a network wider than /16: a client certificate that leaks would reach the BuildKit port from anywhere in it\n  fix: name the client's own address or a network of at most /16, or set `allow_wide_network: true` on this client if so wide a network is meant"),
    ("a CI runner's /8", client(address="10.0.0.0/8", connection="none"),
     "inv.yml: all.children.clients.hosts.laptop.address: 10.0.0.0/8 is a network wider than /16: a client certificate that leaks would reach the BuildKit port from anywhere in it\n  fix: name the client's own address or a network of at most /16, or set `allow_wide_network: true` on this client if so wide a network is meant"),
    ("data_dir /tmp/bk", bk(data_dir="/tmp/bk"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.data_dir: '/tmp/bk' is under /tmp, where others than root may write or the system keeps its own files\n  fix: use a folder of its own such as /opt/buildkit-ops or /srv/buildkit"),
    ("data_dir /var/tmp/bk", bk(data_dir="/var/tmp/bk"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.data_dir: '/var/tmp/bk' is under /var/tmp, where others than root may write or the system keeps its own files\n  fix: use a folder of its own such as /opt/buildkit-ops or /srv/buildkit"),
    ("data_dir /dev/shm/bk", bk(data_dir="/dev/shm/bk"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.data_dir: '/dev/shm/bk' is under /dev, where others than root may write or the system keeps its own files\n  fix: use a folder of its own such as /opt/buildkit-ops or /srv/buildkit"),
    ("data_dir /home/x", bk(data_dir="/home/x"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.data_dir: '/home/x' is under /home, where others than root may write or the system keeps its own files\n  fix: use a folder of its own such as /opt/buildkit-ops or /srv/buildkit"),
    ("data_dir /etc", bk(data_dir="/etc"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.data_dir: '/etc' is under /etc, where others than root may write or the system keeps its own files\n  fix: use a folder of its own such as /opt/buildkit-ops or /srv/buildkit"),
    ("data_dir /opt itself", bk(data_dir="/opt"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.data_dir: '/opt' is a shared system folder, not a folder of its own\n  fix: use a folder of its own such as /opt/buildkit-ops or /srv/buildkit"),
    ("a host named with another host's address", lambda d: d["all"]["children"]["buildhosts"]["hosts"].update(
        build2={"address": "10.0.0.12", "names": ["10.0.0.11"]}),
     "inv.yml: all.children.buildhosts.hosts.build2.names: 10.0.0.11 is also a name of build host 'build1': either "
     "certificate would then pass for the other host\n  fix: give each host names of its own"),
    # bounds: every number has one, and the types hold (issue 18, finding 7)
    ('ca_days zero: a CA that expires today', top(ca_days=0),
     'inv.yml: all.vars.ca_days: must be a whole number from 1 to 36500, got 0\n  fix: write a number from 1 to 36500, without quotes'),
    ('ca_days past any calendar', top(ca_days=99999999),
     'inv.yml: all.vars.ca_days: must be a whole number from 1 to 36500, got 99999999\n  fix: write a number from 1 to 36500, without quotes'),
    ('cert_renew_days as long as a certificate lives', top(cert_renew_days=825),
     'inv.yml: all.vars.cert_renew_days: must be a whole number from 1 to 824, got 825\n  fix: write a number from 1 to 824, without quotes'),
    ("a size of 2**63 bytes (Go's int64 overflows)", gc(keep_storage=2**63),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.gc.keep_storage: 9223372036854775808 is not a disk space\n  fix: write a size such as 10GB or 512MiB, or a share of the disk such as "10%"'),
    ('a size in petabytes of digits', gc(keep_storage="999999999999999TB"),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.gc.keep_storage: \'999999999999999TB\' is not a disk space\n  fix: write a size such as 10GB or 512MiB, or a share of the disk such as "10%"'),
    ('history_max_entries negative', bk(history_max_entries=-1),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.history_max_entries: must be a whole number from 0 to 100000, got -1\n  fix: write a number from 0 to 100000, without quotes'),
    ('history_max_entries past the bound', bk(history_max_entries=100001),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.history_max_entries: must be a whole number from 0 to 100000, got 100001\n  fix: write a number from 0 to 100000, without quotes'),
    ('weight zero', host(weight=0),
     'inv.yml: all.children.buildhosts.hosts.build1.weight: must be a whole number from 1 to 1000, got 0\n  fix: write a number from 1 to 1000, without quotes'),
    ('weight past the bound', host(weight=1001),
     'inv.yml: all.children.buildhosts.hosts.build1.weight: must be a whole number from 1 to 1000, got 1001\n  fix: write a number from 1 to 1000, without quotes'),
    ('connect_timeout past the bound', host(connect_timeout=301),
     'inv.yml: all.children.buildhosts.hosts.build1.connect_timeout: must be a whole number from 1 to 300, got 301\n  fix: write a number from 1 to 300, without quotes'),
    ('max_parallelism past the bound', bk(max_parallelism=1025),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.max_parallelism: must be a whole number from 1 to 1024, got 1025\n  fix: write a number from 1 to 1024, without quotes'),
    ('ssh_port zero', host(ssh_port=0),
     'inv.yml: all.children.buildhosts.hosts.build1.ssh_port: must be a TCP port between 1 and 65535, got 0\n  fix: write a number such as 1234'),
    ('a duration of a million hours', bk(history_max_age="1000000h"),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.history_max_age: '1000000h' is not a duration\n  fix: write a duration such as 48h, 30m or 7d"),
    ('a negative duration', gc(policies=[{"keep_duration": "-1h"}]),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.gc.policies[0].keep_duration: '-1h' is not a duration\n  fix: write a duration such as 48h, 30m or 7d"),
    ('a share of the disk above 100%', gc(max_used="101%"),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.gc.max_used: \'101%\' is not a disk space\n  fix: write a size such as 10GB or 512MiB, or a share of the disk such as "10%"'),
    ('allow_outdated_buildkit as a word', host(allow_outdated_buildkit="yes"),
     "inv.yml: all.children.buildhosts.hosts.build1.allow_outdated_buildkit: must be true or false, got 'yes'\n  fix: write true or false"),
    ('allow_wide_network as a word', client(allow_wide_network="true"),
     "inv.yml: all.children.clients.hosts.laptop.allow_wide_network: must be true or false, got 'true'\n  fix: write true or false"),
    ('a bool where a number goes', bk(max_parallelism=True),
     'inv.yml: all.children.buildhosts.hosts.build1.buildkit.max_parallelism: must be a whole number from 1 to 1024, got True\n  fix: write a number from 1 to 1024, without quotes'),
]


@pytest.mark.parametrize("what,edit,message", BAD, ids=[b[0] for b in BAD])
def test_hostile_value_is_refused_at_load_with_an_exact_message(tmp_path, what, edit, message):
    got = refusal(tmp_path, edit)
    assert got == message
    assert "\n" not in got.split("\n  fix: ")[0]  # one line for the problem, whatever the value held


def test_the_battery_covers_every_kind_of_value_the_schema_checks():
    """Every value kind of the schema (image, version, paths, calendar, filters, addresses, ...) has at least one
    hostile case above that names a key of that kind."""
    from buildkit_ops.inventory import schema
    tables = (schema.HOST_KEYS, schema.BUILDKIT_KEYS, schema.GC_KEYS, schema.CLIENT_KEYS)
    kinds = {k: kind for table in tables for k, (kind, _d, _h) in table.items()}
    plain = {"buildkit", "gc", "policies", "registries", "prune_schedule", "limits", "bool", "path", "int", "port"}
    wanted = {kind for kind in kinds.values() if not kind.startswith(("int", "enum")) and kind not in plain}
    refused = {kinds[key] for _what, _edit, message in BAD for key in kinds
               if re.search(rf"\.{key}(\[\d+\])?: ", message)}
    assert wanted <= refused, sorted(wanted - refused)


@pytest.mark.parametrize("value,normal", [("10.0.0.21/32", "10.0.0.21"), ("10.0.0.7/24", "10.0.0.0/24"),
                                          ("2001:db8::1", "2001:db8::1"), ("2001:DB8::/64", "2001:db8::/64")])
def test_client_addresses_are_normalised(tmp_path, value, normal):
    inv = load_text(tmp_path, mutate(client(address=value, ssh_address="10.0.0.21")))
    assert inv.clients["laptop"].address == normal


@pytest.mark.parametrize("edit", [
    bk(image="moby/buildkit:v0.13.2"), bk(image="registry.example.com:5000/team/buildkit:v0.13.2-rootless"),
    bk(image="moby/buildkit@sha256:" + "a" * 64), bk(debug_address="127.0.0.1:6060"), bk(debug_address="[::1]:6060"),
    bk(prune_schedule={"calendar": "Sun 03:00", "keep_storage": "1GB"}),
    bk(prune_schedule={"calendar": "Mon..Fri 02:30", "filters": ["type==exec.cachemount"]}),
    bk(prune_schedule={"calendar": "*-*-* 04:00:00", "all": True}),
    bk(registries={"[2001:db8::5]:5000": {"http": True}, "docker.io": {"mirrors": ["mirror.example.com:5000"]}}),
    client(builder="team.builder_1"), host(names=["build1.example.com", "2001:db8::11"]),
])
def test_good_values_pass(tmp_path, edit):
    inv = load_text(tmp_path, mutate(edit))
    # what was written is what the model holds (normalised only where the grammar says so)
    data = yaml.safe_load(mutate(edit))["all"]["children"]
    want_host = data["buildhosts"]["hosts"]["build1"]
    got_host = inv.hosts["build1"]
    for key, value in (want_host.get("buildkit") or {}).items():
        got = getattr(got_host.buildkit, key)
        if key == "prune_schedule":
            assert got.calendar == value["calendar"]
        elif key == "registries":
            assert set(got) == set(value)
        else:
            assert got == value, key
    for key in ("names",):
        if key in want_host:
            assert getattr(got_host, key) == want_host[key]
    laptop = data["clients"]["hosts"]["laptop"]
    if "builder" in laptop:
        assert inv.clients["laptop"].builder == laptop["builder"]


def test_a_wide_network_is_a_clients_only_when_it_says_so(tmp_path):
    inv = load_text(tmp_path, mutate(client(address="10.0.0.0/8", ssh_address="10.0.0.21", allow_wide_network=True)))
    assert inv.clients["laptop"].address == "10.0.0.0/8" and inv.clients["laptop"].allow_wide_network
    assert load_text(tmp_path, mutate(client(address="10.1.0.0/16", ssh_address="10.0.0.21"))).clients[
        "laptop"].address == "10.1.0.0/16"   # /16 is the widest without saying so


@pytest.mark.parametrize("edit,message", [
    (top(ca_days=0), "all.vars.ca_days: must be a whole number from 1 to 36500, got 0"),
    (top(ca_days=99999999), "all.vars.ca_days: must be a whole number from 1 to 36500, got 99999999"),
    (gc(max_used=2**64), "buildkit.gc.max_used: 18446744073709551616 is not a disk space"),
    (gc(max_used="9999999999999TB"), "buildkit.gc.max_used: '9999999999999TB' is not a disk space"),
])
def test_every_number_has_bounds(tmp_path, edit, message):
    assert message in refusal(tmp_path, edit)


def test_the_battery_of_hostile_values_covers_ninety_cases_or_more():
    assert len(BAD) >= 90 and len({what for what, _edit, _message in BAD}) == len(BAD)
