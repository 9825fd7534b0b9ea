<?php
// HonnyPotter: /xmlrpc.php, answered like WordPress's. Every call that
// carries credentials (wp.getUsersBlogs above all, the brute-force method,
// also inside system.multicall bundles) is refused with fault 403 and
// recorded as one failed login.

declare(strict_types=1);

require_once __DIR__ . '/lib/common.php';
require_once __DIR__ . '/lib/xmlrpc.php';

/** WordPress 6.4's method list, in the order it answers system.listMethods. */
const HP_METHODS = [
    'system.multicall', 'system.listMethods', 'system.getCapabilities',
    'demo.addTwoNumbers', 'demo.sayHello',
    'pingback.extensions.getPingbacks', 'pingback.ping',
    'mt.publishPost', 'mt.getTrackbackPings', 'mt.supportedTextFilters',
    'mt.supportedMethods', 'mt.setPostCategories', 'mt.getPostCategories',
    'mt.getRecentPostTitles', 'mt.getCategoryList',
    'metaWeblog.getUsersBlogs', 'metaWeblog.deletePost', 'metaWeblog.newMediaObject',
    'metaWeblog.getCategories', 'metaWeblog.getRecentPosts', 'metaWeblog.getPost',
    'metaWeblog.editPost', 'metaWeblog.newPost',
    'blogger.deletePost', 'blogger.editPost', 'blogger.newPost', 'blogger.getRecentPosts',
    'blogger.getPost', 'blogger.getUserInfo', 'blogger.getUsersBlogs',
    'wp.restoreRevision', 'wp.getRevisions', 'wp.getPostTypes', 'wp.getPostType',
    'wp.getPostFormats', 'wp.getMediaLibrary', 'wp.getMediaItem', 'wp.getCommentStatusList',
    'wp.newComment', 'wp.editComment', 'wp.deleteComment', 'wp.getComments', 'wp.getComment',
    'wp.setOptions', 'wp.getOptions', 'wp.getPageTemplates', 'wp.getPageStatusList',
    'wp.getPostStatusList', 'wp.getCommentCount', 'wp.deleteFile', 'wp.uploadFile',
    'wp.suggestCategories', 'wp.deleteCategory', 'wp.newCategory', 'wp.getTags',
    'wp.getCategories', 'wp.getAuthors', 'wp.getPageList', 'wp.editPage', 'wp.deletePage',
    'wp.newPage', 'wp.getPages', 'wp.getPage', 'wp.editProfile', 'wp.getProfile',
    'wp.getUsers', 'wp.getUser', 'wp.getTaxonomies', 'wp.getTaxonomy', 'wp.getTerms',
    'wp.getTerm', 'wp.deleteTerm', 'wp.editTerm', 'wp.newTerm', 'wp.getPosts', 'wp.getPost',
    'wp.deletePost', 'wp.editPost', 'wp.newPost', 'wp.getUsersBlogs',
];

const HP_FAULT_LOGIN = [403, 'Incorrect username or password.'];
const HP_FAULT_ARGS = [400, 'Insufficient arguments passed to this XML-RPC method.'];

/**
 * Where a method takes its username and password: [user index, password
 * index], or null when it needs no login.
 */
function hp_credential_slots(string $method): ?array
{
    switch ($method) {
        case 'wp.getUsersBlogs':
            return [0, 1];
        case 'wp.getPage':
        case 'wp.editPage':
        case 'blogger.deletePost':
        case 'blogger.editPost':
        case 'blogger.newPost':
        case 'blogger.getRecentPosts':
        case 'blogger.getPost':
        case 'metaWeblog.deletePost':
            return [2, 3];
        case 'mt.getTrackbackPings':
        case 'mt.supportedTextFilters':
        case 'mt.supportedMethods':
            return null;
    }
    foreach (['wp.', 'metaWeblog.', 'blogger.', 'mt.'] as $prefix) {
        if (strncmp($method, $prefix, strlen($prefix)) === 0) {
            return in_array($method, HP_METHODS, true) ? [1, 2] : null;
        }
    }
    return null;
}

/**
 * Runs one call; returns its result or a fault [code, message]. $extra goes
 * into the event of a login attempt.
 *
 * @return array{0:bool,1:mixed} [is fault, result or [code, message]]
 */
function hp_call(string $method, array $params, array $extra, bool $inMulticall): array
{
    $slots = hp_credential_slots($method);
    if ($slots !== null) {
        [$u, $p] = $slots;
        if (count($params) <= $p) {
            return [true, HP_FAULT_ARGS];
        }
        hp_login_failed('xmlrpc', $params[$u], $params[$p], ['xmlrpc_method' => hp_cut($method, 64)] + $extra);
        return [true, HP_FAULT_LOGIN];
    }
    switch ($method) {
        case 'system.listMethods':
            return [false, HP_METHODS];
        case 'system.multicall':
            if ($inMulticall) {
                return [true, [-32600, 'Recursive calls to system.multicall are forbidden']];
            }
            return [false, hp_multicall($params[0] ?? null)];
        case 'system.getCapabilities':
            return [false, [
                'xmlrpc' => ['specUrl' => 'http://www.xmlrpc.com/spec', 'specVersion' => 1],
                'faults_interop' => ['specUrl' => 'http://xmlrpc-epi.sourceforge.net/specs/rfc.fault_codes.php', 'specVersion' => 20010516],
                'system.multicall' => ['specUrl' => 'http://www.xmlrpc.com/discuss/msgReader$1208', 'specVersion' => 1],
            ]];
        case 'demo.sayHello':
            return [false, 'Hello!'];
        case 'demo.addTwoNumbers':
            $a = $params[0] ?? 0;
            $b = $params[1] ?? 0;
            return [false, (is_int($a) ? $a : 0) + (is_int($b) ? $b : 0)];
        case 'mt.supportedTextFilters':
        case 'mt.getTrackbackPings':
            return [false, []];
        case 'mt.supportedMethods':
            return [false, array_values(array_filter(HP_METHODS, fn (string $m): bool => strncmp($m, 'mt.', 3) === 0))];
        case 'pingback.ping':
            // Never fetched: the pot makes no outbound request.
            return [true, [33, 'The specified target URL cannot be used as a target. It either does not exist, or it is not a pingback-enabled resource.']];
        case 'pingback.extensions.getPingbacks':
            return [true, [32, 'The specified target URL does not exist.']];
    }
    return [true, [-32601, 'server error. requested method ' . hp_cut($method, 128) . ' does not exist.']];
}

/** system.multicall: at most HP_MAX_CALLS calls, one result or fault each. */
function hp_multicall($calls): array
{
    if (!is_array($calls)) {
        return [];
    }
    $out = [];
    $n = count($calls);
    foreach (array_slice(array_values($calls), 0, HP_MAX_CALLS) as $i => $call) {
        $method = is_array($call) ? hp_cut($call['methodName'] ?? '', 128) : '';
        $params = is_array($call) && is_array($call['params'] ?? null) ? array_values($call['params']) : [];
        [$fault, $r] = hp_call($method, $params, ['multicall_index' => $i, 'multicall_size' => $n], true);
        $out[] = $fault ? ['faultCode' => $r[0], 'faultString' => $r[1]] : [$r];
    }
    return $out;
}

function hp_xmlrpc_send(string $xml): void
{
    header('Connection: close');
    header('Content-Type: text/xml; charset=UTF-8');
    header('Content-Length: ' . strlen($xml));
    echo $xml;
}

hp_common_headers();
if (($_SERVER['REQUEST_METHOD'] ?? 'GET') !== 'POST') {
    if (isset($_GET['rsd'])) {
        $base = hp_base();
        header('Content-Type: text/xml; charset=UTF-8');
        echo '<?xml version="1.0" encoding="UTF-8"?><rsd version="1.0" xmlns="http://archipelago.phrasewise.com/rsd">' . "\n"
            . "  <service>\n    <engineName>WordPress</engineName>\n    <engineLink>https://wordpress.org/</engineLink>\n"
            . '    <homePageLink>' . hp_xml($base . '/') . "</homePageLink>\n    <apis>\n"
            . '      <api name="WordPress" blogID="1" preferred="true" apiLink="' . hp_xml($base . '/xmlrpc.php') . "\" />\n"
            . "    </apis>\n  </service>\n</rsd>\n";
        return;
    }
    http_response_code(405);
    header('Allow: POST');
    header('Content-Type: text/plain;charset=UTF-8');
    echo 'XML-RPC server accepts POST requests only.';
    return;
}

$body = hp_body();
if ($body === null) {
    hp_xmlrpc_send(hp_xmlrpc_fault(-32700, 'parse error. not well formed'));
    return;
}
if (trim($body) === '') {
    header('Content-Type: text/plain;charset=UTF-8');
    echo 'XML-RPC server accepts POST requests only.';
    return;
}
try {
    [$method, $params] = (new HpXmlRpcReader($body))->methodCall();
} catch (HpXmlError $e) {
    hp_xmlrpc_send(hp_xmlrpc_fault(-32700, 'parse error. not well formed'));
    return;
}
[$fault, $result] = hp_call($method, $params, [], false);
hp_xmlrpc_send($fault ? hp_xmlrpc_fault($result[0], $result[1]) : hp_xmlrpc_response($result));
