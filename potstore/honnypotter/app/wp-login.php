<?php
// HonnyPotter: /wp-login.php, shaped like WordPress's login page. A POST of
// log/pwd is always a wrong password, and recorded.

declare(strict_types=1);

require_once __DIR__ . '/lib/common.php';

$base = hp_base();
$login_url = $base . '/wp-login.php';
$lost_url = $login_url . '?action=lostpassword';
$action = hp_cut($_GET['action'] ?? 'login', 32);
$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';

hp_common_headers();
hp_nocache_headers();
header('Content-Type: text/html; charset=UTF-8');
header('X-Frame-Options: SAMEORIGIN');
header('Referrer-Policy: strict-origin-when-cross-origin');
if (!isset($_COOKIE['wordpress_test_cookie'])) {
    header('Set-Cookie: wordpress_test_cookie=WP%20Cookie%20check; path=/; HttpOnly', false);
}

if ($action === 'register') {
    header('X-Redirect-By: WordPress');
    header('Location: ' . $login_url . '?registration=disabled', true, 302);
    return;
}
if (($action === 'lostpassword' || $action === 'retrievepassword') && $method === 'POST') {
    header('X-Redirect-By: WordPress');
    header('Location: ' . $login_url . '?checkemail=confirm', true, 302);
    return;
}

$user = '';
$errors = [];
$message = '';
if ($action === 'lostpassword' || $action === 'retrievepassword') {
    $message = 'Please enter your username or email address. You will receive an email message with instructions on how to reset your password.';
} elseif ($method === 'POST' && !hp_body_too_large()) {
    $user = hp_cut($_POST['log'] ?? '');
    $pass = hp_cut($_POST['pwd'] ?? '');
    if ($user !== '' || $pass !== '') {
        hp_login_failed('wp-login', $user, $pass);
    }
    if ($user === '' && $pass !== '') {
        $errors[] = '<strong>Error:</strong> The username field is empty.';
    } elseif ($user !== '' && $pass === '') {
        $errors[] = '<strong>Error:</strong> The password field is empty.';
    } elseif ($user !== '') {
        $what = strpos($user, '@') !== false ? 'email address' : 'username';
        $errors[] = '<strong>Error:</strong> The password you entered for the ' . $what
            . ' <strong>' . hp_esc($user) . '</strong> is incorrect. <a href="' . hp_esc($lost_url)
            . '">Lost your password?</a>';
    }
} elseif (isset($_GET['checkemail'])) {
    $message = 'Check your email for the confirmation link, then visit the <a href="' . hp_esc($login_url) . '">login page</a>.';
} elseif (isset($_GET['registration'])) {
    $message = 'User registration is currently not allowed.';
} elseif (isset($_GET['loggedout'])) {
    $message = 'You are now logged out.';
}

$lost = $action === 'lostpassword' || $action === 'retrievepassword';
$site = hp_esc(hp_site_name());
$title = $lost ? 'Lost Password' : 'Log In';
$redirect_to = hp_cut($_POST['redirect_to'] ?? ($_GET['redirect_to'] ?? ($base . '/wp-admin/')), HP_MAX_URL);
$ver = HP_VERSION;
$css = [
    'buttons-css' => "/wp-includes/css/buttons.min.css?ver=$ver",
    'login-css' => "/wp-admin/css/login.min.css?ver=$ver",
];
$body_class = 'login no-js login-action-' . ($lost ? 'lostpassword' : 'login') . ' wp-core-ui  locale-en-us';
?>
<!DOCTYPE html>
	<html lang="en-US">
	<head>
	<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
	<title><?= $title ?> &lsaquo; <?= $site ?> &#8212; WordPress</title>
	<meta name='robots' content='max-image-preview:large, noindex, noarchive' />
<?php foreach ($css as $id => $href) : ?>
<link rel='stylesheet' id='<?= $id ?>' href='<?= hp_esc($base . $href) ?>' media='all' />
<?php endforeach; ?>
	<meta name='referrer' content='strict-origin-when-cross-origin' />
		<meta name="viewport" content="width=device-width" />
		</head>
	<body class="<?= $body_class ?>">
	<script type="text/javascript">
/* <![CDATA[ */
document.body.className = document.body.className.replace('no-js','js');
/* ]]> */
</script>
				<div id="login">
		<h1><a href="https://wordpress.org/">Powered by WordPress</a></h1>
	<?php if ($errors) : ?>
	<div id="login_error" class="notice notice-error"><p><?= implode("<br />\n", $errors) ?></p></div>
	<?php endif; ?>
	<?php if ($message !== '') : ?>
	<div class="notice notice-info message"><p><?= $message ?></p></div>
	<?php endif; ?>
<?php if ($lost) : ?>
		<form name="lostpasswordform" id="lostpasswordform" action="<?= hp_esc($login_url) ?>?action=lostpassword" method="post">
			<p>
				<label for="user_login">Username or Email Address</label>
				<input type="text" name="user_login" id="user_login" class="input" value="" size="20" autocapitalize="off" autocomplete="username" required="required" />
			</p>
						<input type="hidden" name="redirect_to" value="" />
			<p class="submit">
				<input type="submit" name="wp-submit" id="wp-submit" class="button button-primary button-large" value="Get New Password" />
			</p>
		</form>

		<p id="nav">
			<a class="wp-login-log-in" href="<?= hp_esc($login_url) ?>">Log in</a>
					</p>
<?php else : ?>
		<form name="loginform" id="loginform" action="<?= hp_esc($login_url) ?>" method="post">
			<p>
				<label for="user_login">Username or Email Address</label>
				<input type="text" name="log" id="user_login"<?= $errors ? ' aria-describedby="login_error"' : '' ?> class="input" value="<?= hp_esc($user) ?>" size="20" autocapitalize="off" autocomplete="username" required="required" />
			</p>

			<div class="user-pass-wrap">
				<label for="user_pass">Password</label>
				<div class="wp-pwd">
					<input type="password" name="pwd" id="user_pass"<?= $errors ? ' aria-describedby="login_error"' : '' ?> class="input password-input" value="" size="20" autocomplete="current-password" spellcheck="false" required="required" />
					<button type="button" class="button button-secondary wp-hide-pw hide-if-no-js" data-toggle="0" aria-label="Show password">
						<span class="dashicons dashicons-visibility" aria-hidden="true"></span>
					</button>
				</div>
			</div>
						<p class="forgetmenot"><input name="rememberme" type="checkbox" id="rememberme" value="forever"  /> <label for="rememberme">Remember Me</label></p>
			<p class="submit">
				<input type="submit" name="wp-submit" id="wp-submit" class="button button-primary button-large" value="Log In" />
									<input type="hidden" name="redirect_to" value="<?= hp_esc($redirect_to) ?>" />
									<input type="hidden" name="testcookie" value="1" />
			</p>
		</form>

					<p id="nav">
				<a class="wp-login-lost-password" href="<?= hp_esc($lost_url) ?>">Lost your password?</a>			</p>
<?php endif; ?>
			<script type="text/javascript">
/* <![CDATA[ */
function wp_attempt_focus() {setTimeout( function() {try {d = document.getElementById( "user_login" );d.focus(); d.select();} catch( er ) {}}, 200);}
wp_attempt_focus();
(function () {
	var b = document.querySelector( '.wp-hide-pw' ), p = document.getElementById( 'user_pass' );
	if ( ! b || ! p ) { return; }
	b.addEventListener( 'click', function () {
		var show = p.type === 'password';
		p.type = show ? 'text' : 'password';
		b.setAttribute( 'data-toggle', show ? '1' : '0' );
		b.setAttribute( 'aria-label', show ? 'Hide password' : 'Show password' );
		b.firstElementChild.className = 'dashicons dashicons-' + ( show ? 'hidden' : 'visibility' );
	} );
})();
<?php if ($errors) : ?>
document.querySelector( 'form' ).classList.add( 'shake' );
<?php endif; ?>
if ( typeof wpOnload === 'function' ) { wpOnload() }
/* ]]> */
</script>
				<p id="backtoblog">
			<a href="<?= hp_esc($base . '/') ?>">&larr; Go to <?= $site ?></a>		</p>
			</div>
		<div class="clear"></div>
	</body>
	</html>
