<?php
// HonnyPotter: what every page shares. Bounded input, the site's URLs, and
// the login attempts sent to the agent's event socket (potstore/README.md,
// "Events") or, when the agent is away, appended to a file in the pot dir.

declare(strict_types=1);

const HP_VERSION = '6.4.3';            // the WordPress version we pretend to be
const HP_MAX_FIELD = 256;              // bytes kept of a username or password
const HP_MAX_UA = 512;                 // bytes kept of a User-Agent
const HP_MAX_URL = 1024;               // bytes kept of a URL
const HP_MAX_BODY = 65536;             // bodies over this are ignored
const HP_MAX_CALLS = 50;               // calls read from one system.multicall
const HP_CONNECT_TIMEOUT = 0.5;        // seconds to reach the agent
const HP_WRITE_TIMEOUT_US = 500000;    // microseconds to hand it a line
const HP_SPILL_FILE = 'unsent-events.ndjson';
const HP_SPILL_MAX = 8 * 1024 * 1024;  // then rotated to .1 (two files at most)

// php -S runs quiet (-q: no line per request, which under a brute force
// would only push everything else out of the agent's log ring), and quiet
// also silences PHP's own error log: our errors go to stderr from here.
function hp_log(string $message): void
{
    @file_put_contents('php://stderr', substr('honnypotter: ' . $message, 0, 1024) . "\n");
}

set_error_handler(function (int $no, string $message, string $file, int $line): bool {
    if ((error_reporting() & $no) !== 0) {
        hp_log("PHP error $no: $message at " . basename($file) . ":$line");
    }
    return true;
});

register_shutdown_function(function (): void {
    $e = error_get_last();
    if ($e !== null && ($e['type'] & (E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR)) !== 0) {
        hp_log("PHP fatal error: {$e['message']} at " . basename($e['file']) . ":{$e['line']}");
    }
});

/** $v as a string of at most $max bytes; '' for arrays and null. */
function hp_cut($v, int $max = HP_MAX_FIELD): string
{
    if (is_int($v) || is_float($v)) {
        $v = (string) $v;
    } elseif (is_bool($v)) {
        $v = $v ? '1' : '0';
    } elseif (!is_string($v)) {
        return '';
    }
    return strlen($v) > $max ? substr($v, 0, $max) : $v;
}

/** A request header or server variable, cut. */
function hp_server(string $key, int $max): string
{
    return hp_cut($_SERVER[$key] ?? '', $max);
}

/** HTML-escapes for text and attributes. */
function hp_esc(string $s): string
{
    return htmlspecialchars($s, ENT_QUOTES | ENT_SUBSTITUTE | ENT_HTML5, 'UTF-8');
}

function hp_site_name(): string
{
    $name = getenv('HONEYBEE_CFG_SITE_NAME');
    return is_string($name) && $name !== '' ? hp_cut($name, 200) : 'WordPress';
}

/**
 * The site's base URL as WordPress prints it ("http://host:port"), from the
 * Host header when it looks like a host name; '' (relative links) otherwise.
 */
function hp_base(): string
{
    $host = hp_server('HTTP_HOST', 300);
    if (preg_match('/^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/D', $host)) {
        return 'http://' . $host;
    }
    return '';
}

/** The request's path and query, cut. */
function hp_request_uri(): string
{
    return hp_server('REQUEST_URI', HP_MAX_URL);
}

/** Whether the request carries a body larger than we read. */
function hp_body_too_large(): bool
{
    $len = $_SERVER['CONTENT_LENGTH'] ?? ($_SERVER['HTTP_CONTENT_LENGTH'] ?? '');
    return is_string($len) && $len !== '' && (!hp_digits($len) || strlen($len) > 9 || (int) $len > HP_MAX_BODY);
}

/** ctype_digit without the ctype extension (php -n has none). */
function hp_digits(string $s): bool
{
    return $s !== '' && strspn($s, '0123456789') === strlen($s);
}

/** The raw body, or null when it is over HP_MAX_BODY. */
function hp_body(): ?string
{
    if (hp_body_too_large()) {
        return null;
    }
    $body = @file_get_contents('php://input', false, null, 0, HP_MAX_BODY + 1);
    if (!is_string($body) || strlen($body) > HP_MAX_BODY) {
        return $body === false ? '' : null;
    }
    return $body;
}

/** The current time as RFC 3339 UTC with microseconds. */
function hp_now(): string
{
    $t = microtime(true);
    $sec = (int) floor($t);
    return gmdate('Y-m-d\TH:i:s', $sec) . sprintf('.%06dZ', (int) (($t - $sec) * 1000000));
}

/**
 * Reports one failed login: $method is "wp-login" or "xmlrpc". Never throws
 * and never blocks for long; what cannot be sent goes to a file.
 */
function hp_login_failed(string $method, $username, $password, array $extra = []): void
{
    $user = hp_cut($username);
    $pass = hp_cut($password);
    $event = [
        'eventid' => 'honnypotter.login.failed',
        'timestamp' => hp_now(),
        'sensor' => hp_pot_id(),
        'src_ip' => hp_server('REMOTE_ADDR', 64),
        'src_port' => (int) ($_SERVER['REMOTE_PORT'] ?? 0),
        'dst_port' => (int) ($_SERVER['SERVER_PORT'] ?? 0),
        'username' => $user,
        'password' => $pass,
        'user_agent' => hp_server('HTTP_USER_AGENT', HP_MAX_UA),
        'url' => hp_request_uri(),
        'protocol' => 'http',
        'method' => $method,
    ] + $extra;
    $event['message'] = "login attempt [$user/$pass] failed";
    hp_emit($event);
}

function hp_pot_id(): string
{
    $id = getenv('HONEYBEE_POT_ID');
    return is_string($id) && $id !== '' ? $id : 'honnypotter';
}

/** One JSON line to the agent, else to the spill file. */
function hp_emit(array $event): void
{
    $json = json_encode(
        $event,
        JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE
    );
    if (!is_string($json)) {
        return;
    }
    // json_encode escapes control characters: the line holds no newline.
    $line = $json . "\n";
    if (!hp_send($line)) {
        hp_spill($line);
    }
}

/**
 * The line that proves to the agent that this is the pot (docs/protocol.md
 * section 8): {"token": HONEYBEE_POT_TOKEN}. Sent, never stored.
 */
function hp_token_line(): ?string
{
    $token = getenv('HONEYBEE_POT_TOKEN');
    if (!is_string($token) || $token === '' || strlen($token) > 256) {
        return null;
    }
    $json = json_encode(['token' => $token]);
    return is_string($json) ? $json . "\n" : null;
}

/**
 * Writes $line to HONEYBEE_EVENT_ADDR over one persistent connection per
 * PHP process (PHP checks that a kept connection is still alive before
 * reusing it). A refused or slow agent costs at most the timeouts.
 *
 * The token line goes before every event line: whether a kept connection
 * is new cannot be told, and the agent takes the token as the first line
 * of a new connection and skips it on one that presented it already.
 */
function hp_send(string $line): bool
{
    $addr = getenv('HONEYBEE_EVENT_ADDR');
    if (!is_string($addr) || $addr === '' || strlen($addr) > 300) {
        return false;
    }
    $hello = hp_token_line();
    if ($hello === null) {
        return false;
    }
    $line = $hello . $line;
    for ($attempt = 0; $attempt < 2; $attempt++) {
        $errno = 0;
        $errstr = '';
        $sock = @stream_socket_client(
            'tcp://' . $addr,
            $errno,
            $errstr,
            HP_CONNECT_TIMEOUT,
            STREAM_CLIENT_CONNECT | STREAM_CLIENT_PERSISTENT
        );
        if ($sock === false) {
            return false;
        }
        stream_set_timeout($sock, 0, HP_WRITE_TIMEOUT_US);
        $written = @fwrite($sock, $line);
        if ($written === strlen($line)) {
            return true;
        }
        // Broken or stalled: close it. A line cut short has no newline, so
        // the agent drops it with the connection; the whole line is spilled.
        @fclose($sock);
        if (is_int($written) && $written > 0) {
            return false;
        }
        // Nothing went out: the kept connection was dead; try a new one once.
    }
    return false;
}

/** Appends $line to the spill file in the pot dir (bounded, rotated once). */
function hp_spill(string $line): void
{
    $dir = getenv('HONEYBEE_POT_DIR');
    if (!is_string($dir) || $dir === '') {
        $dir = dirname(__DIR__, 2);
    }
    $file = $dir . '/' . HP_SPILL_FILE;
    clearstatcache(true, $file);
    $size = @filesize($file);
    if (is_int($size) && $size + strlen($line) > HP_SPILL_MAX) {
        @rename($file, $file . '.1');
    }
    @file_put_contents($file, $line, FILE_APPEND | LOCK_EX);
}

/** Headers WordPress sends with pages that must not be cached. */
function hp_nocache_headers(): void
{
    header('Expires: Wed, 11 Jan 1984 05:00:00 GMT');
    header('Cache-Control: no-cache, must-revalidate, max-age=0');
}

/** Headers every answer carries. */
function hp_common_headers(): void
{
    header('Server: Apache');
}
