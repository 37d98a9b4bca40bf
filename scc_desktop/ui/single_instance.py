"""One app per profile: the first launch listens on a local socket, a second one says "show".

The socket name comes from the profile's key, so two profiles run side by side. A socket file
left by a crash answers no one; it is removed and the new launch takes over.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QAbstractSocket, QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

SHOW = b"show\n"
CONNECT_TIMEOUT_MS = 500
READ_TIMEOUT_MS = 300


def server_name(profile_key: str) -> str:
    return f"scc-desktop-{profile_key}"


def notify_running(name: str, timeout_ms: int = CONNECT_TIMEOUT_MS) -> bool:
    """Ask a running instance to show itself; False when none answers."""
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(timeout_ms):
        return False
    socket.write(SHOW)
    socket.flush()
    socket.waitForBytesWritten(timeout_ms)
    socket.disconnectFromServer()
    if socket.state() != QLocalSocket.LocalSocketState.UnconnectedState:
        socket.waitForDisconnected(timeout_ms)
    return True


class InstanceServer(QObject):
    show_requested = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_connection)

    def listen(self) -> bool:
        """Listen, replacing a stale socket; call only after notify_running found no one."""
        if self._server.listen(self.name):
            return True
        if self._server.serverError() == QAbstractSocket.SocketError.AddressInUseError:
            log.info("removing a stale instance socket %s", self.name)
            QLocalServer.removeServer(self.name)
            if self._server.listen(self.name):
                return True
        log.warning("single-instance server not started: %s", self._server.errorString())
        return False

    def close(self) -> None:
        self._server.close()

    def _on_connection(self) -> None:
        """Read the one short message a second launch sends right after connecting."""
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            if not socket.bytesAvailable():
                socket.waitForReadyRead(READ_TIMEOUT_MS)
            data = bytes(socket.readAll().data())
            socket.disconnectFromServer()
            socket.deleteLater()
            if data.startswith(SHOW.strip()):
                self.show_requested.emit()
