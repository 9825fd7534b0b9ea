<?php
// HonnyPotter: the theme pages around the trap, a block theme's front page
// and its "Page not found", so that the site reads as a plain WordPress blog.

declare(strict_types=1);

require_once __DIR__ . '/common.php';

function hp_theme_page(int $status, string $title, string $body_class, string $main): void
{
    $base = hp_base();
    $site = hp_esc(hp_site_name());
    $ver = HP_VERSION;
    http_response_code($status);
    hp_common_headers();
    header('Content-Type: text/html; charset=UTF-8');
    if ($status === 404) {
        hp_nocache_headers();
    }
    header('Link: <' . $base . '/wp-json/>; rel="https://api.w.org/"');
    $b = hp_esc($base);
    echo <<<HTML
<!DOCTYPE html>
<html lang="en-US">
<head>
	<meta charset="UTF-8" />
	<meta name="viewport" content="width=device-width, initial-scale=1" />
<meta name='robots' content='max-image-preview:large' />
<title>$title</title>
<link rel="alternate" type="application/rss+xml" title="$site &raquo; Feed" href="$b/feed/" />
<link rel="https://api.w.org/" href="$b/wp-json/" />
<link rel="EditURI" type="application/rsd+xml" title="RSD" href="$b/xmlrpc.php?rsd" />
<meta name="generator" content="WordPress $ver" />
<style>
body{margin:0;background:#fff;color:#111;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Oxygen-Sans,Ubuntu,Cantarell,"Helvetica Neue",sans-serif;font-size:1.1rem;line-height:1.55}
a{color:#111}
.wp-site-blocks{max-width:720px;margin:0 auto;padding:2rem 1.25rem}
header.wp-block-template-part{display:flex;justify-content:space-between;align-items:center;padding-bottom:3rem}
.wp-block-site-title{font-weight:600;margin:0;font-size:1rem}
.wp-block-site-title a{text-decoration:none}
nav a{margin-left:1.25rem;font-size:.95rem;text-decoration:none}
h1,h2{font-family:Georgia,"Times New Roman",serif;font-weight:400;line-height:1.2}
h1{font-size:2.8rem;margin:0 0 1rem}
h2{font-size:2rem;margin:0 0 .5rem}
.wp-block-post-date{color:#555;font-size:.9rem}
.wp-block-search{display:flex;gap:.5rem;margin-top:1.5rem}
.wp-block-search input{flex:1;padding:.6rem;border:1px solid #949494;font-size:1rem}
.wp-block-search button{padding:.6rem 1rem;border:0;background:#111;color:#fff;font-size:1rem}
footer.wp-block-template-part{margin-top:5rem;padding-top:2rem;border-top:1px solid #ddd;font-size:.9rem;display:flex;justify-content:space-between}
</style>
</head>

<body class="$body_class wp-embed-responsive">
<div class="wp-site-blocks"><header class="wp-block-template-part">
<p class="wp-block-site-title"><a href="$b/" rel="home">$site</a></p>
<nav class="wp-block-navigation" aria-label="Navigation"><a href="$b/sample-page/">Sample Page</a></nav>
</header>

<main class="wp-block-group">
$main
</main>

<footer class="wp-block-template-part">
<p class="wp-block-site-title"><a href="$b/" rel="home">$site</a></p>
<p>Designed with <a href="https://wordpress.org" rel="nofollow">WordPress</a></p>
</footer></div>
</body>
</html>

HTML;
}

function hp_not_found(): void
{
    $site = hp_esc(hp_site_name());
    $b = hp_esc(hp_base());
    hp_theme_page(404, "Page not found &#8211; $site", 'error404', <<<HTML
<h1 class="wp-block-heading">Page Not Found</h1>
<p>The page you are looking for does not exist, or it has been moved. Please try searching using the form below.</p>
<form role="search" method="get" action="$b/" class="wp-block-search"><label class="screen-reader-text" for="s" hidden>Search</label><input type="search" id="s" name="s" value="" placeholder="Search..." required /><button type="submit">Search</button></form>
HTML);
}

function hp_front_page(): void
{
    $site = hp_esc(hp_site_name());
    $b = hp_esc(hp_base());
    hp_theme_page(200, $site, 'home blog', <<<HTML
<article class="wp-block-post post-1 post type-post status-publish format-standard hentry category-uncategorized">
<h2 class="wp-block-post-title"><a href="$b/2024/01/15/hello-world/">Hello world!</a></h2>
<div class="wp-block-post-excerpt"><p>Welcome to WordPress. This is your first post. Edit or delete it, then start writing!</p></div>
<div class="wp-block-post-date"><time datetime="2024-01-15T09:12:44+00:00">January 15, 2024</time></div>
</article>
HTML);
}
