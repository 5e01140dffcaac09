"""One pod's mariadbd: initialised and upgraded the way the official image's entrypoint does it.

The steps follow MariaDB/mariadb-docker's docker-entrypoint.sh (10.11): a new data directory
gets `mariadb-install-db`, a temporary server without networking, the time zone tables, the
root and application users, the healthcheck users, `/docker-entrypoint-initdb.d` SQL files;
an existing one is upgraded with `mariadb-upgrade` when ``MARIADB_AUTO_UPGRADE`` is set and
its recorded version is older. The real server then listens on the pod IP, port 3306, inside
the pod network namespace.
"""

from __future__ import annotations

import gzip
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

from testbed.podruntime.images import major_minor
from testbed.podruntime.podspec import ContainerPlan

PORT = 3306
ROOT_PASSWORD_VARIABLES = (
    "MARIADB_ROOT_PASSWORD",
    "MARIADB_ROOT_PASSWORD_HASH",
    "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD",
    "MARIADB_RANDOM_ROOT_PASSWORD",
)
# Variables the entrypoint also reads from <NAME>_FILE, and their MYSQL_ aliases.
FILE_VARIABLES = (
    "MARIADB_ROOT_HOST",
    "MARIADB_DATABASE",
    "MARIADB_USER",
    "MARIADB_PASSWORD",
    "MARIADB_ROOT_PASSWORD",
    "MARIADB_PASSWORD_HASH",
    "MARIADB_ROOT_PASSWORD_HASH",
    "MARIADB_REPLICATION_USER",
    "MARIADB_REPLICATION_PASSWORD",
    "MARIADB_REPLICATION_PASSWORD_HASH",
    "MARIADB_MASTER_HOST",
    "MARIADB_MASTER_PORT",
)
MYSQL_ALIASES = {
    "MYSQL_ROOT_HOST": "MARIADB_ROOT_HOST",
    "MYSQL_DATABASE": "MARIADB_DATABASE",
    "MYSQL_USER": "MARIADB_USER",
    "MYSQL_PASSWORD": "MARIADB_PASSWORD",
    "MYSQL_ROOT_PASSWORD": "MARIADB_ROOT_PASSWORD",
    "MYSQL_ALLOW_EMPTY_PASSWORD": "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD",
    "MYSQL_RANDOM_ROOT_PASSWORD": "MARIADB_RANDOM_ROOT_PASSWORD",
    "MYSQL_INITDB_SKIP_TZINFO": "MARIADB_INITDB_SKIP_TZINFO",
}
# Directories the image's my.cnf includes, in its order (mariadb.conf.d before conf.d).
CONFIG_DIRS = ("etc/mysql/mariadb.conf.d", "etc/mysql/conf.d")
INITDB_DIR = "docker-entrypoint-initdb.d"
BASE_CONFIG = """\
# Written by the test bed's pod runtime for pod {pod}. The pod's mounted configuration is
# included last, so it overrides these defaults; the test bed's own settings (socket, port,
# bind address, data directory, logs) are on mariadbd's command line.
[client-server]
socket = {socket}
port = {port}

[mariadbd]
# As in the official image (mariadb.conf.d/05-skipcache.cnf and 50-server.cnf).
skip-name-resolve
host-cache-size = 0
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
# Small by default: many servers share this machine.
innodb-buffer-pool-size = 32M
innodb-log-file-size = 8M
"""


class EntrypointError(Exception):
    """The container would exit non-zero during initialisation (reported as a crash)."""


def server_version() -> str:
    """The local mariadbd's version, e.g. ``10.11.19``."""
    out = subprocess.run(["mariadbd", "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Ver (\d+\.\d+\.\d+)", out)
    if not match:
        raise RuntimeError(f"cannot read the version of mariadbd from {out!r}")
    return match.group(1)


def sql_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def accepts_connections(host: str, port: int = PORT, timeout: float = 1.0) -> bool:
    """True when the server at host:port answers a new client with a MariaDB protocol packet."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            header = conn.recv(4)
            if len(header) < 4:
                return False
            # The handshake (protocol 10), or an error packet such as "host not allowed": either
            # way the server is up and answering clients.
            return conn.recv(1) in (b"\x0a", b"\xff")
    except OSError:
        return False


@dataclass
class UpgradeResult:
    ran: bool
    previous_version: str | None
    message: str


class MariaDBServer:
    """Everything about one pod's server: files, initialisation, process."""

    def __init__(
        self,
        plan: ContainerPlan,
        pod: str,
        hostname: str,
        pod_ip: str,
        pod_dir: Path,
        run_dir: Path,
        netns: str,
        version: str,
    ) -> None:
        self.plan = plan
        self.pod = pod
        self.hostname = hostname
        self.pod_ip = pod_ip
        self.pod_dir = pod_dir
        self.netns = netns
        self.version = version
        self.socket = run_dir / "mysqld.sock"
        self.pid_file = run_dir / "mysqld.pid"
        self.defaults_file = pod_dir / "my.cnf"
        self.error_log = pod_dir / "error.log"
        self.entrypoint_log = pod_dir / "entrypoint.log"
        # The container's own /tmp: servers must not share temporary files.
        self.tmp_dir = run_dir / "tmp"
        self.process: subprocess.Popen | None = None
        self.env = self._resolve_env(plan)

    # -- environment ------------------------------------------------------------------------

    def _resolve_env(self, plan: ContainerPlan) -> dict[str, str]:
        env = dict(plan.env)
        for variable in FILE_VARIABLES:
            file_variable = f"{variable}_FILE"
            if env.get(variable) and env.get(file_variable):
                raise EntrypointError(f"Both {variable} and {file_variable} are set (but are exclusive)")
            if env.get(file_variable):
                path = plan.host_path(env[file_variable])
                try:
                    env[variable] = path.read_text()
                except OSError:
                    raise EntrypointError(
                        f"{file_variable}={env[file_variable]}: no such file in the container (mount the "
                        "Secret or ConfigMap that holds it)"
                    ) from None
        for mysql_name, mariadb_name in MYSQL_ALIASES.items():
            if not env.get(mariadb_name) and env.get(mysql_name):
                env[mariadb_name] = env[mysql_name]
        env.setdefault("MARIADB_ROOT_HOST", "%")
        if not env["MARIADB_ROOT_HOST"]:
            env["MARIADB_ROOT_HOST"] = "%"
        return env

    def note(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S%z")
        with self.entrypoint_log.open("a") as f:
            f.write(f"{stamp} [Note] [Entrypoint]: {message}\n")

    # -- configuration and commands ----------------------------------------------------------

    def write_config(self) -> None:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        lines = [BASE_CONFIG.format(pod=self.pod, socket=self.socket, port=PORT)]
        for directory in CONFIG_DIRS:
            path = self.plan.files_root / directory
            if path.is_dir():
                lines.append(f"!includedir {path}\n")
        self.defaults_file.write_text("".join(lines))

    def _mariadbd(self, *extra: str) -> list[str]:
        """mariadbd with the pod's configuration and args; `extra` (the test bed's) win."""
        return [
            "mariadbd",
            f"--defaults-file={self.defaults_file}",
            *self.plan.server_args,
            "--user=root",
            f"--datadir={self.plan.datadir}",
            f"--socket={self.socket}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.error_log}",
            f"--tmpdir={self.tmp_dir}",
            *extra,
        ]

    def _run(self, args: list[str], what: str, input: bytes | None = None) -> subprocess.CompletedProcess:
        with self.entrypoint_log.open("a") as log:
            result = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, input=input)
        if result.returncode != 0:
            raise EntrypointError(
                f"{what} failed with exit code {result.returncode}; see {self.entrypoint_log}"
            )
        return result

    # -- temporary server (initialisation, upgrade) ------------------------------------------

    def _start_temporary(self, *extra: str) -> subprocess.Popen:
        self.socket.unlink(missing_ok=True)
        with self.entrypoint_log.open("a") as log:
            process = subprocess.Popen(
                self._mariadbd(
                    "--skip-networking",
                    "--default-time-zone=SYSTEM",
                    "--wsrep-on=OFF",
                    "--expire-logs-days=0",
                    "--loose-innodb-buffer-pool-load-at-startup=0",
                    *extra,
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EntrypointError(
                    f"temporary server exited with {process.returncode} (Unable to start server); "
                    f"see {self.error_log}"
                )
            try:
                self._socket_connection(password="").close()
                return process
            except pymysql.err.OperationalError:
                time.sleep(0.2)
        self._stop_process(process, 10)
        raise EntrypointError(
            "Unable to start server: the temporary server did not accept connections in 60 s"
        )

    def _socket_connection(
        self, password: str, database: str | None = None
    ) -> pymysql.connections.Connection:
        return pymysql.connect(
            unix_socket=str(self.socket),
            user="root",
            password=password,
            database=database,
            autocommit=True,
            charset="utf8mb4",
            connect_timeout=5,
        )

    def _client(self, *args: str) -> list[str]:
        return [
            "mariadb",
            "--no-defaults",
            "--protocol=socket",
            "-uroot",
            "-hlocalhost",
            f"--socket={self.socket}",
            *args,
        ]

    @staticmethod
    def _stop_process(process: subprocess.Popen, grace: float) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    # -- initialisation ----------------------------------------------------------------------

    def initialised(self) -> bool:
        return (self.plan.datadir / "mysql").is_dir()

    def initialise(self) -> None:
        """Initialise an empty data directory; on failure it is emptied again, so that the next
        start initialises it from scratch instead of starting a half-initialised server."""
        try:
            self._initialise()
        except BaseException:
            self.note("Initialisation failed: emptying the data directory for the next attempt")
            for path in self.plan.datadir.iterdir():
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            raise

    def _initialise(self) -> None:
        env = self.env
        if not any(env.get(v) for v in ROOT_PASSWORD_VARIABLES):
            raise EntrypointError(
                "Database is uninitialized and password option is not specified: You need to specify one of "
                + ", ".join(ROOT_PASSWORD_VARIABLES)
            )
        if env.get("MARIADB_ROOT_PASSWORD_HASH") and any(
            env.get(v)
            for v in (
                "MARIADB_ROOT_PASSWORD",
                "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD",
                "MARIADB_RANDOM_ROOT_PASSWORD",
            )
        ):
            raise EntrypointError(
                "Cannot specify MARIADB_ROOT_PASSWORD_HASH and another MARIADB_ROOT_PASSWORD* option."
            )
        if env.get("MARIADB_PASSWORD") and env.get("MARIADB_PASSWORD_HASH"):
            raise EntrypointError("Cannot specify MARIADB_PASSWORD_HASH and MARIADB_PASSWORD option.")

        self.note("Initializing database files")
        self._run(
            [
                "mariadb-install-db",
                f"--defaults-file={self.defaults_file}",
                f"--datadir={self.plan.datadir}",
                "--rpm",
                "--auth-root-authentication-method=normal",
                "--user=root",
                f"--tmpdir={self.tmp_dir}",
                *self.plan.server_args,
                "--skip-test-db",
                "--old-mode=UTF8_IS_UTF8MB3",
                "--default-time-zone=SYSTEM",
                "--enforce-storage-engine=",
                "--skip-log-bin",
                "--expire-logs-days=0",
                "--loose-innodb-buffer-pool-load-at-startup=0",
                "--loose-innodb-buffer-pool-dump-at-shutdown=0",
            ],
            "mariadb-install-db",
        )
        self.note("Database files initialized")
        self.note("Starting temporary server")
        process = self._start_temporary()
        try:
            self._setup_database()
            self._run_init_files()
            if env.get("MARIADB_ROOT_PASSWORD_HASH"):
                self.note("Setting root@localhost password hash")
                with self._socket_connection(password="") as conn, conn.cursor() as cur:
                    cur.execute("SET @@SESSION.SQL_LOG_BIN=0")
                    cur.execute(
                        "SET PASSWORD FOR 'root'@'localhost' = %s", (env["MARIADB_ROOT_PASSWORD_HASH"],)
                    )
        finally:
            self.note("Stopping temporary server")
            self._stop_process(process, 60)
        self.note("MariaDB init process done. Ready for start up.")

    def _setup_database(self) -> None:
        env = self.env
        if not env.get("MARIADB_INITDB_SKIP_TZINFO"):
            tzinfo = subprocess.run(
                ["mariadb-tzinfo-to-sql", "--skip-write-binlog", "/usr/share/zoneinfo"],
                capture_output=True,
                check=True,
            )
            self._run(self._client("--database=mysql"), "loading time zones", input=tzinfo.stdout)
        root_password = env.get("MARIADB_ROOT_PASSWORD", "")
        if env.get("MARIADB_RANDOM_ROOT_PASSWORD"):
            root_password = secrets.token_urlsafe(24)
            env["MARIADB_ROOT_PASSWORD"] = root_password
            # The image prints it to the container log; no log here carries a secret.
            generated = self.pod_dir / "generated-root-password"
            generated.write_text(root_password)
            generated.chmod(0o600)
            self.note(f"GENERATED ROOT PASSWORD written to {generated}")
        root_host = env["MARIADB_ROOT_HOST"]
        root_hash = env.get("MARIADB_ROOT_PASSWORD_HASH")

        self.note("Securing system users (equivalent to running mysql_secure_installation)")
        with self._socket_connection(password="", database="mysql") as conn, conn.cursor() as cur:
            cur.execute("SET @orig_sql_log_bin = @@SESSION.SQL_LOG_BIN")
            cur.execute("SET @@SESSION.SQL_LOG_BIN = 0")
            cur.execute("SET @@SESSION.SQL_MODE = REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '')")
            cur.execute("DROP USER IF EXISTS root@'127.0.0.1', root@'::1'")
            cur.execute("EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\\'', @@hostname, '\\'')")
            if not root_hash:
                cur.execute("SET PASSWORD FOR 'root'@'localhost' = PASSWORD(%s)", (root_password,))
            if root_host and root_host != "localhost":
                if root_hash:
                    cur.execute("CREATE USER 'root'@%s IDENTIFIED BY PASSWORD %s", (root_host, root_hash))
                else:
                    cur.execute("CREATE USER 'root'@%s IDENTIFIED BY %s", (root_host, root_password))
                cur.execute("GRANT ALL ON *.* TO 'root'@%s WITH GRANT OPTION", (root_host,))
                cur.execute("GRANT PROXY ON ''@'%%' TO 'root'@%s WITH GRANT OPTION", (root_host,))
            self._create_healthcheck_users(cur)
            cur.execute("SET @@SESSION.SQL_LOG_BIN = @orig_sql_log_bin")

            database = env.get("MARIADB_DATABASE")
            if database:
                self.note(f"Creating database {database}")
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {sql_identifier(database)}")
            user = env.get("MARIADB_USER")
            if user and (env.get("MARIADB_PASSWORD") or env.get("MARIADB_PASSWORD_HASH")):
                self.note(f"Creating user {user}")
                if env.get("MARIADB_PASSWORD_HASH"):
                    cur.execute(
                        "CREATE USER %s@'%%' IDENTIFIED BY PASSWORD %s", (user, env["MARIADB_PASSWORD_HASH"])
                    )
                else:
                    cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, env["MARIADB_PASSWORD"]))
                if database:
                    self.note(f"Giving user {user} access to schema {database}")
                    # As the image: `_` is a wildcard in a GRANT's database name.
                    cur.execute(
                        f"GRANT ALL ON {sql_identifier(database.replace('_', chr(92) + '_'))}.* TO %s@'%%'",
                        (user,),
                    )
            self._setup_replication(cur)

    def _create_healthcheck_users(self, cur: pymysql.cursors.Cursor) -> None:
        password = secrets.token_urlsafe(24)
        grant = self.env.get("MARIADB_HEALTHCHECK_GRANTS") or "USAGE"
        for host in ("127.0.0.1", "::1", "localhost"):
            cur.execute("CREATE USER IF NOT EXISTS healthcheck@%s IDENTIFIED BY %s", (host, password))
            cur.execute("SET PASSWORD FOR healthcheck@%s = PASSWORD(%s)", (host, password))
            cur.execute(f"GRANT {grant} ON *.* TO healthcheck@%s", (host,))
        cnf = self.plan.datadir / ".my-healthcheck.cnf"
        cnf.write_text(
            f"[mariadb-client]\nport={PORT}\nsocket={self.socket}\nuser=healthcheck\n"
            f"password={password}\nprotocol=tcp\n"
        )
        cnf.chmod(0o600)

    def _setup_replication(self, cur: pymysql.cursors.Cursor) -> None:
        env = self.env
        user = env.get("MARIADB_REPLICATION_USER")
        if not user:
            return
        if not env.get("MARIADB_MASTER_HOST"):
            self.note(f"Creating user {user}")
            if env.get("MARIADB_REPLICATION_PASSWORD_HASH"):
                cur.execute(
                    "CREATE USER %s@'%%' IDENTIFIED BY PASSWORD %s",
                    (user, env["MARIADB_REPLICATION_PASSWORD_HASH"]),
                )
            else:
                cur.execute(
                    "CREATE USER %s@'%%' IDENTIFIED BY %s",
                    (user, env.get("MARIADB_REPLICATION_PASSWORD", "")),
                )
            cur.execute("GRANT REPLICATION REPLICA ON *.* TO %s@'%%'", (user,))
        else:
            cur.execute(
                "CHANGE MASTER TO MASTER_HOST=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, MASTER_PORT=%s, "
                "MASTER_CONNECT_RETRY=10",
                (
                    env["MARIADB_MASTER_HOST"],
                    user,
                    env.get("MARIADB_REPLICATION_PASSWORD", ""),
                    int(env.get("MARIADB_MASTER_PORT") or 3306),
                ),
            )
            cur.execute("START REPLICA")

    def _run_init_files(self) -> None:
        directory = self.plan.files_root / INITDB_DIR
        if not directory.is_dir():
            return
        database = [f"--database={self.env['MARIADB_DATABASE']}"] if self.env.get("MARIADB_DATABASE") else []
        client = self._client(f"--password={self.env.get('MARIADB_ROOT_PASSWORD', '')}", *database)
        for path in sorted(directory.iterdir()):
            if path.name.endswith(".sql"):
                data = path.read_bytes()
            elif path.name.endswith(".sql.gz"):
                data = gzip.decompress(path.read_bytes())
            elif path.name.endswith(".sql.zst"):
                data = subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
            else:
                self.note(f"ignoring {path.name} (the test bed runs only .sql, .sql.gz and .sql.zst files)")
                continue
            self.note(f"running {path.name}")
            self._run(client, f"{INITDB_DIR}/{path.name}", input=data)

    # -- upgrade -----------------------------------------------------------------------------

    def recorded_version(self) -> str | None:
        try:
            return (self.plan.datadir / "mysql_upgrade_info").read_text().strip("\0\n ")
        except OSError:
            return None

    def upgrade_needed(self) -> bool:
        recorded = self.recorded_version()
        if recorded is None:
            self.note("MariaDB upgrade information missing, assuming required")
            return True
        old, new = major_minor(recorded), major_minor(self.version)
        if old is None or new is None or old[1] is None or new[1] is None or old < new:
            return True
        if not (self.plan.datadir / ".my-healthcheck.cnf").exists():
            self.note("MariaDB heathcheck configation file missing, assuming desirable")
            return True
        self.note("MariaDB upgrade not required")
        return False

    def upgrade(self) -> UpgradeResult | None:
        """mariadb-upgrade when needed and MARIADB_AUTO_UPGRADE asks for it; None when not needed."""
        if not self.upgrade_needed():
            return None
        previous = self.recorded_version()
        auto = self.env.get("MARIADB_AUTO_UPGRADE", "")
        if not auto or auto == "0":
            message = (
                "MariaDB upgrade (mariadb-upgrade or creating healthcheck users) required, but skipped "
                "due to $MARIADB_AUTO_UPGRADE setting"
            )
            self.note(message)
            return UpgradeResult(ran=False, previous_version=previous, message=message)
        self.note("Starting temporary server")
        process = self._start_temporary(
            "--skip-grant-tables", "--loose-innodb-buffer-pool-dump-at-shutdown=0", "--skip-slave-start"
        )
        try:
            if self.env.get("MARIADB_DISABLE_UPGRADE_BACKUP") != "1":
                backup = self.plan.datadir / f"system_mysql_backup_{previous or 'unknown_version'}.sql.zst"
                self.note(f"Backing up system database to {backup.name}")
                dump = subprocess.run(
                    [
                        "mariadb-dump",
                        "--no-defaults",
                        "--skip-lock-tables",
                        "--replace",
                        "--databases",
                        "mysql",
                        f"--socket={self.socket}",
                    ],
                    capture_output=True,
                    check=True,
                ).stdout
                backup.write_bytes(
                    subprocess.run(["zstd", "-q"], input=dump, capture_output=True, check=True).stdout
                )
            if not (self.plan.datadir / ".my-healthcheck.cnf").exists():
                self.note("Creating healthcheck users")
                with self._socket_connection(password="") as conn, conn.cursor() as cur:
                    cur.execute("SET @@SESSION.SQL_LOG_BIN = 0")
                    cur.execute("FLUSH PRIVILEGES")
                    self._create_healthcheck_users(cur)
            self.note("Starting mariadb-upgrade")
            self._run(
                ["mariadb-upgrade", "--no-defaults", "--upgrade-system-tables", f"--socket={self.socket}"],
                "mariadb-upgrade",
            )
            self.note("Finished mariadb-upgrade")
        finally:
            self.note("Stopping temporary server")
            self._stop_process(process, 60)
        message = (
            f"mariadb-upgrade ran: data directory of MariaDB {previous or 'unknown'}, server {self.version}"
        )
        return UpgradeResult(ran=True, previous_version=previous, message=message)

    # -- the real server ---------------------------------------------------------------------

    def start(self) -> subprocess.Popen:
        """Start mariadbd on the pod IP inside the pod network namespace."""
        self.socket.unlink(missing_ok=True)
        with self.entrypoint_log.open("a") as log:
            self.process = subprocess.Popen(
                [
                    # Inside the pod network namespace, and a UTS namespace with the pod's hostname.
                    "ip",
                    "netns",
                    "exec",
                    self.netns,
                    "unshare",
                    "--uts",
                    "--",
                    "sh",
                    "-c",
                    'hostname "$0" && exec "$@"',
                    self.hostname,
                    *self._mariadbd(f"--bind-address={self.pod_ip}", f"--port={PORT}"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.process

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        return self.running() and accepts_connections(self.pod_ip)

    def stop(self, grace: float) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; returns the exit code."""
        if self.process is None:
            return None
        return self._stop_process(self.process, grace)


def kill_leftover_servers(run_root: Path) -> list[int]:
    """SIGKILL mariadbd processes of a previous runtime (found by their pid files)."""
    killed = []
    for pid_file in run_root.glob("*/mysqld.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if b"mariadbd" in cmdline and str(pid_file).encode() in cmdline:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed
