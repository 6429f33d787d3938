// ringlink-qt-peer: Qt's own QLocalSocket benchmark workload, run by ringlink-bench as
// the `qt` row. The server is a QLocalServer in a QThread with its own event loop that
// echoes what it receives; the clients are QLocalSockets in the main thread's event
// loop, as in Qt's tst_qlocalsocket benchmark. Written for ringlink, not Qt's code.
//
//   ringlink-qt-peer pingPong     NAME CONNECTIONS ROUND_TRIPS_PER_CONNECTION
//   ringlink-qt-peer dataExchange NAME CONNECTIONS CHUNK MILLISECONDS
//
// Prints `ok ELAPSED_NS RECEIVED_BYTES` or `error MESSAGE`, and exits 0 or 1.

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QLocalServer>
#include <QLocalSocket>
#include <QSemaphore>
#include <QThread>
#include <QTimer>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

namespace {

int fail(const QString &why) {
    std::printf("error %s\n", why.toLocal8Bit().constData());
    std::fflush(stdout);
    return 1;
}

// Listens on `name` in its own thread and echoes on every connection.
class EchoServer : public QThread {
public:
    EchoServer(QString name, QSemaphore *listening, bool *ok)
        : name_(std::move(name)), listening_(listening), ok_(ok) {}

protected:
    void run() override {
        QLocalServer server;
        server.setMaxPendingConnections(100000);
        QLocalServer::removeServer(name_);
        *ok_ = server.listen(name_);
        listening_->release();
        if (!*ok_) return;
        QObject::connect(&server, &QLocalServer::newConnection, &server, [&server] {
            while (QLocalSocket *socket = server.nextPendingConnection()) {
                QObject::connect(socket, &QLocalSocket::readyRead, socket,
                                 [socket] { socket->write(socket->readAll()); });
                QObject::connect(socket, &QLocalSocket::disconnected, socket,
                                 &QObject::deleteLater);
            }
        });
        exec();
    }

private:
    QString name_;
    QSemaphore *listening_;
    bool *ok_;
};

}  // namespace

int main(int argc, char **argv) {
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    const bool pingPong = args.size() == 5 && args[1] == "pingPong";
    const bool exchange = args.size() == 6 && args[1] == "dataExchange";
    if (!pingPong && !exchange) return fail("usage: pingPong NAME CONNS ROUND_TRIPS | dataExchange NAME CONNS CHUNK MS");
    const QString name = args[2];
    const int connections = args[3].toInt();
    const qint64 chunk = pingPong ? 1 : args[4].toLongLong();
    const qint64 target = pingPong ? args[4].toLongLong() : -1;
    const int millis = exchange ? args[5].toInt() : 0;

    QSemaphore listening;
    bool listened = false;
    EchoServer server(name, &listening, &listened);
    server.start();
    listening.acquire();
    if (!listened) {
        server.wait();
        return fail("cannot listen on " + name);
    }

    std::vector<std::unique_ptr<QLocalSocket>> sockets;
    std::vector<qint64> received(connections, 0);
    for (int i = 0; i < connections; ++i) {
        auto socket = std::make_unique<QLocalSocket>();
        socket->connectToServer(name);
        if (!socket->waitForConnected(10000)) {
            server.quit();
            server.wait();
            return fail("connect: " + socket->errorString());
        }
        sockets.push_back(std::move(socket));
    }

    const QByteArray outgoing(chunk, 'Z');
    QElapsedTimer timer;
    qint64 elapsed = 0;
    qint64 total = 0;
    int done = 0;
    bool failed = false;
    bool finished = false;
    for (int i = 0; i < connections; ++i) {
        QLocalSocket *socket = sockets[i].get();
        QObject::connect(socket, &QLocalSocket::readyRead, socket, [&, socket, i] {
            const QByteArray in = socket->readAll();
            received[i] += in.size();
            total += in.size();
            if (pingPong && received[i] >= target) {
                if (received[i] > target) failed = true;
                if (++done == connections) {
                    elapsed = timer.nsecsElapsed();
                    app.exit(0);
                }
                return;
            }
            socket->write(in);
        });
        QObject::connect(socket, &QLocalSocket::disconnected, socket, [&] {
            if (finished) return;
            failed = true;
            app.exit(1);
        });
    }
    if (exchange) {
        QTimer::singleShot(millis, &app, [&] {
            elapsed = timer.nsecsElapsed();
            app.exit(0);
        });
    }
    // A bound on the whole run, so a stalled exchange ends.
    QTimer::singleShot(120000, &app, [&] {
        failed = true;
        app.exit(1);
    });
    timer.start();
    for (auto &socket : sockets) socket->write(outgoing);
    app.exec();
    finished = true;
    const qint64 counted = total;
    for (auto &socket : sockets) socket->disconnectFromServer();
    sockets.clear();
    server.quit();
    server.wait();
    if (failed) return fail("the exchange failed or stalled");
    std::printf("ok %lld %lld\n", static_cast<long long>(elapsed), static_cast<long long>(counted));
    std::fflush(stdout);
    return 0;
}
