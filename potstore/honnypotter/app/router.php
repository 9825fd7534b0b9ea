<?php
// HonnyPotter: the router php -S runs for every request. It never hands a
// request back to the built-in server (that would serve files as they are),
// so nothing but the routes below is reachable.

declare(strict_types=1);

require_once __DIR__ . '/lib/common.php';

$uri = hp_request_uri();
$path = rawurldecode((string) strtok($uri, '?#'));
$path = (string) preg_replace('#/{2,}#', '/', $path === '' ? '/' : $path);

// Our own stylesheets, at the paths WordPress uses.
const HP_STATIC = [
    '/wp-admin/css/login.min.css' => 'login.min.css',
    '/wp-includes/css/buttons.min.css' => 'buttons.min.css',
];

if (isset(HP_STATIC[$path])) {
    $file = __DIR__ . '/static/' . HP_STATIC[$path];
    hp_common_headers();
    header('Content-Type: text/css');
    header('Cache-Control: max-age=31536000');
    header('Content-Length: ' . (string) filesize($file));
    readfile($file);
    return true;
}

switch ($path) {
    case '/wp-login.php':
        require __DIR__ . '/wp-login.php';
        return true;
    case '/xmlrpc.php':
        require __DIR__ . '/xmlrpc.php';
        return true;
    case '/wp-admin':
        // What Apache answers for a directory without its slash.
        hp_common_headers();
        header('Location: ' . hp_base() . '/wp-admin/', true, 301);
        return true;
    case '/robots.txt':
        hp_common_headers();
        header('Content-Type: text/plain; charset=utf-8');
        echo "User-agent: *\nDisallow: /wp-admin/\nAllow: /wp-admin/admin-ajax.php\n";
        return true;
    case '/':
    case '/index.php':
        require_once __DIR__ . '/lib/pages.php';
        hp_front_page();
        return true;
}

if (strncmp($path, '/wp-admin/', 10) === 0) {
    $rest = substr($path, 10);
    if ($rest === 'admin-ajax.php') {
        // Logged out, no action: WordPress answers "0" with 400.
        http_response_code(400);
        hp_common_headers();
        header('Content-Type: text/html; charset=UTF-8');
        echo '0';
        return true;
    }
    if ($rest === '' || substr($rest, -4) === '.php' || substr($rest, -1) === '/') {
        // auth_redirect(): back to the login, then to where they were going.
        $base = hp_base();
        hp_common_headers();
        hp_nocache_headers();
        header('X-Redirect-By: WordPress');
        header('Location: ' . $base . '/wp-login.php?redirect_to=' . urlencode($base . $uri) . '&reauth=1', true, 302);
        return true;
    }
}

require_once __DIR__ . '/lib/pages.php';
hp_not_found();
return true;
