"""Run tshark with a given smtp-over-http plugin build against given captures.

Wireshark loads personal plugins from
~/.local/lib/wireshark/plugins/<major.minor>/epan (the folder tshark's own
`-G folders` names, so the same code serves 4.0, 4.4 and 4.6), but ignores that directory
(and WIRESHARK_PLUGIN_DIR) when the real user id is 0.  So this module builds a
fresh, world-readable temporary HOME holding a copy of the plugin and of the
captures, and runs tshark with HOME pointing there:

- as root: as uid/gid 65534 (nobody/nogroup) through
  `setpriv --reuid=65534 --regid=65534 --clear-groups`;
- as any other user: as that user.

tshark's environment is reduced to HOME, PATH and LC_ALL=C, so personal
preferences and profiles of the calling user cannot change the results.

Standard library only.
"""

import os
import re
import shutil
import subprocess
import tempfile

PROTO = "smtp-over-http"
PLUGIN_FILE = PROTO + ".so"
UNPRIVILEGED_ID = 65534
DEFAULT_TIMEOUT = 300

# The stable field contract (see the README's Fields section).
CONTRACT_FIELDS = [
    "smtp-over-http.leg",
    "smtp-over-http.method",
    "smtp-over-http.tunnel.stream",
    "smtp-over-http.relay.stream",
    "smtp-over-http.connect_in",
    "smtp-over-http.relay_in",
    "smtp-over-http.target.host",
    "smtp-over-http.target.port",
    "smtp-over-http.status",
    "smtp-over-http.smtp",
    "smtp-over-http.pairing",
    "smtp-over-http.relay.candidate",
    "smtp-over-http.smtp.helo",
    "smtp-over-http.smtp.mail_from",
    "smtp-over-http.smtp.rcpt_to",
    "smtp-over-http.smtp.messages",
    "smtp-over-http.smtp.rcpt_count",
]


def _same_file(a, b):
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read() == fb.read()
    except OSError:
        return False


class TsharkError(Exception):
    """tshark could not be run, failed, or did not load the plugin."""


class TsharkEnv:
    """A temporary tshark home with the plugin installed as a personal plugin.

    Use as a context manager; captures passed to `stage` are copied in, and
    `run` executes tshark with the staged files.
    """

    def __init__(self, plugin, timeout=DEFAULT_TIMEOUT, tshark="tshark"):
        if not plugin or not os.path.isfile(plugin):
            raise TsharkError("plugin file not found: %r (build the plugin first)" % plugin)
        self.plugin = os.path.abspath(plugin)
        self.timeout = timeout
        self.tshark = shutil.which(tshark)
        if self.tshark is None:
            raise TsharkError("tshark not found in PATH")
        self.as_root = os.getuid() == 0
        if self.as_root and shutil.which("setpriv") is None:
            raise TsharkError("running as root needs setpriv (util-linux) to drop to uid %d"
                              % UNPRIVILEGED_ID)
        self.home = None
        self.plugin_copy = None
        self._staged = {}

    # -- set-up -----------------------------------------------------------
    def __enter__(self):
        self.home = tempfile.mkdtemp(prefix="soh-tshark-")
        os.chmod(self.home, 0o755)
        pdir = os.path.join(self.personal_plugins(), "epan")
        os.makedirs(pdir)
        self.plugin_copy = os.path.join(pdir, PLUGIN_FILE)
        shutil.copyfile(self.plugin, self.plugin_copy)
        os.makedirs(os.path.join(self.home, "captures"))
        self._make_world_readable()
        return self

    def __exit__(self, *exc):
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)
        self.home = None
        return False

    def personal_plugins(self):
        """The personal plugin folder this tshark reads with HOME set to ours
        (.../plugins/<major.minor>)."""
        out, _ = self.run(["-G", "folders"])
        for line in out.splitlines():
            name, _, path = line.partition(":")
            if name.strip() == "Personal Plugins":
                path = path.strip()
                if not os.path.abspath(path).startswith(self.home + os.sep):
                    raise TsharkError("tshark's personal plugin folder %s is not under HOME %s"
                                      % (path, self.home))
                return path
        raise TsharkError("tshark -G folders names no personal plugin folder")

    def _make_world_readable(self):
        for root, dirs, files in os.walk(self.home):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)

    def stage(self, path):
        """Copy a capture into the temporary home; return the copy's path."""
        path = os.path.abspath(path)
        if path in self._staged:
            return self._staged[path]
        dst = os.path.join(self.home, "captures", "%d-%s" % (len(self._staged),
                                                             os.path.basename(path)))
        shutil.copyfile(path, dst)
        os.chmod(dst, 0o644)
        self._staged[path] = dst
        return dst

    # -- running ----------------------------------------------------------
    def command(self, args):
        env = ["env", "-i", "HOME=" + self.home,
               "PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"]
        cmd = env + [self.tshark] + list(args)
        if self.as_root:
            cmd = ["setpriv", "--reuid=%d" % UNPRIVILEGED_ID,
                   "--regid=%d" % UNPRIVILEGED_ID, "--clear-groups"] + cmd
        return cmd

    def run(self, args, check=True):
        """Run tshark; return (stdout, stderr). Raise TsharkError on failure."""
        cmd = self.command(args)
        try:
            r = subprocess.run(cmd, cwd=self.home, capture_output=True,
                               timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise TsharkError("tshark timed out after %ds: %s" % (self.timeout, " ".join(args)))
        out = r.stdout.decode("utf-8", "replace")
        err = r.stderr.decode("utf-8", "replace")
        if check and r.returncode != 0:
            raise TsharkError("tshark %s exited %d:\n%s" % (" ".join(args), r.returncode,
                                                           err.strip()))
        return out, err

    def release(self):
        """This tshark's Wireshark release, "major.minor" (e.g. "4.6")."""
        out, _ = self.run(["--version"])
        m = re.match(r"TShark \(Wireshark\) (\d+)\.(\d+)\.", out)
        if not m:
            raise TsharkError("cannot read the release from tshark --version: %r" % out[:80])
        return "%s.%s" % m.groups()

    def verify_plugin(self, fields=CONTRACT_FIELDS):
        """Fail unless tshark loaded our copy of the plugin, registered the
        protocol and every contract field. Returns the registered field
        abbrevs of the protocol (name -> type), in registration order."""
        out, err = self.run(["-G", "plugins"])
        want = os.path.realpath(self.plugin_copy)
        paths = [os.path.realpath(l.split("\t")[-1].strip()) for l in out.splitlines()
                 if l.startswith(PLUGIN_FILE + "\t")]
        # Wireshark prefers a system-wide copy (e.g. installed by scripts/run.sh
        # as root) to a personal one of the same name: that is fine only when it
        # is byte for byte the build under test.
        loaded = [p for p in paths if p == want or _same_file(p, self.plugin)]
        if paths and not loaded:
            raise TsharkError(
                "tshark loads another copy of the plugin, %s, instead of the build under test %s; "
                "update it (cmake --install build) or remove it" % (paths[0], self.plugin))
        if not loaded:
            raise TsharkError(
                "tshark did not load the plugin %s (copied from %s)%s\n%s" % (
                    self.plugin_copy, self.plugin,
                    " running as uid %d" % UNPRIVILEGED_ID if self.as_root else "",
                    err.strip()))
        types = {l.split("\t")[2].strip() for l in out.splitlines()
                 if l.startswith(PLUGIN_FILE + "\t") and len(l.split("\t")) > 3}
        if types != {"dissector"}:
            raise TsharkError("tshark -G plugins lists the plugin as %s, not as a dissector "
                              "(4.2 and later read the type from plugin_describe)" % sorted(types))
        out, err = self.run(["-G", "protocols"])
        if not any(l.split("\t")[2:3] == [PROTO] for l in out.splitlines()):
            raise TsharkError("plugin loaded but protocol %r not registered\n%s"
                              % (PROTO, err.strip()))
        return self.registered_fields(fields)

    def registered_fields(self, required=()):
        out, err = self.run(["-G", "fields"])
        have = {}
        for l in out.splitlines():
            f = l.split("\t")
            if len(f) > 4 and f[0] == "F" and f[4] == PROTO:
                have[f[2]] = f[3]
        missing = [f for f in required if f not in have]
        if missing:
            raise TsharkError("plugin does not register contract field(s): %s"
                              % ", ".join(missing))
        return have


def our_fields(registered):
    """Contract fields first (in contract order), then any extra value
    fields the plugin registers, sorted; FT_NONE/FT_PROTOCOL left out."""
    extra = sorted(f for f, t in registered.items()
                   if f not in CONTRACT_FIELDS and t not in ("FT_NONE", "FT_PROTOCOL"))
    return [f for f in CONTRACT_FIELDS if f in registered] + extra
