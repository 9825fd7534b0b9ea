<?php
// HonnyPotter: a small XML-RPC reader and writer of our own. PHP's xml
// extension is not part of php-cli, and a hand parser is also one that
// never expands entities or fetches a DTD: the body (at most 64 KiB) is cut
// into tags and text, then read by a recursive descent bounded in depth and
// in the number of values.

declare(strict_types=1);

final class HpXmlError extends Exception
{
}

final class HpXmlRpcReader
{
    private const MAX_DEPTH = 16;
    private const MAX_VALUES = 4096;

    /** @var list<array{0:string,1:string}> [kind, name or text]; kind: open, close, text */
    private array $tokens = [];
    private int $pos = 0;
    private int $values = 0;

    public function __construct(string $xml)
    {
        if (strncmp($xml, "\xEF\xBB\xBF", 3) === 0) {
            $xml = substr($xml, 3);
        }
        if (preg_match('/<!(?:DOCTYPE|ENTITY)/i', $xml)) {
            throw new HpXmlError('DTDs are not accepted');
        }
        // CDATA becomes escaped text; comments and processing instructions go.
        $xml = preg_replace_callback(
            '/<!\[CDATA\[(.*?)\]\]>/s',
            fn (array $m): string => htmlspecialchars($m[1], ENT_XML1 | ENT_NOQUOTES | ENT_SUBSTITUTE, 'UTF-8'),
            $xml
        );
        $xml = is_string($xml) ? preg_replace('/<!--.*?-->|<\?.*?\?>/s', '', $xml) : null;
        $parts = is_string($xml) ? preg_split('/(<[^<>]*>)/', $xml, -1, PREG_SPLIT_DELIM_CAPTURE | PREG_SPLIT_NO_EMPTY) : false;
        if (!is_array($parts)) {
            throw new HpXmlError('unreadable');
        }
        foreach ($parts as $part) {
            if ($part[0] !== '<') {
                if (strpos($part, '<') !== false || strpos($part, '>') !== false) {
                    throw new HpXmlError('stray angle bracket');
                }
                $this->tokens[] = ['text', $part];
                continue;
            }
            if (!preg_match('/^<(\/?)([A-Za-z_][A-Za-z0-9_.:-]*)(?:\s[^>]*?)?(\/?)>$/Ds', $part, $m)) {
                throw new HpXmlError('bad tag');
            }
            if ($m[1] === '/') {
                $this->tokens[] = ['close', $m[2]];
            } else {
                $this->tokens[] = ['open', $m[2]];
                if ($m[3] === '/') {
                    $this->tokens[] = ['close', $m[2]];
                }
            }
        }
    }

    /** @return array{0:string,1:list<mixed>} the method name and the params */
    public function methodCall(): array
    {
        $this->open('methodCall');
        $this->open('methodName');
        $name = trim($this->text());
        $this->close('methodName');
        $params = [];
        if ($this->peekOpen('params')) {
            $this->open('params');
            while ($this->peekOpen('param')) {
                $this->open('param');
                $params[] = $this->value(0);
                $this->close('param');
            }
            $this->close('params');
        }
        $this->close('methodCall');
        $this->skipSpace();
        if ($this->pos !== count($this->tokens)) {
            throw new HpXmlError('trailing content');
        }
        return [$name, $params];
    }

    /** @return mixed */
    private function value(int $depth)
    {
        if ($depth > self::MAX_DEPTH || ++$this->values > self::MAX_VALUES) {
            throw new HpXmlError('too deep or too many values');
        }
        $this->open('value');
        $first = $this->tokens[$this->pos] ?? null;
        $next = $this->isSpace($first) ? ($this->tokens[$this->pos + 1] ?? null) : $first;
        if ($next === null || $next[0] !== 'open') {
            // An untyped value is a string, spaces included.
            $v = $this->text();
            $this->close('value');
            return $v;
        }
        $this->skipSpace();
        $type = $next[1];
        switch ($type) {
            case 'array':
                $this->open('array');
                $this->open('data');
                $list = [];
                while ($this->peekOpen('value')) {
                    $list[] = $this->value($depth + 1);
                }
                $this->close('data');
                $this->close('array');
                $v = $list;
                break;
            case 'struct':
                $this->open('struct');
                $map = [];
                while ($this->peekOpen('member')) {
                    $this->open('member');
                    $this->open('name');
                    $key = $this->text();
                    $this->close('name');
                    $map[$key] = $this->value($depth + 1);
                    $this->close('member');
                }
                $this->close('struct');
                $v = $map;
                break;
            case 'string':
            case 'int':
            case 'i4':
            case 'i8':
            case 'double':
            case 'boolean':
            case 'base64':
            case 'dateTime.iso8601':
            case 'nil':
                $this->open($type);
                $text = $this->text();
                $this->close($type);
                $v = self::scalar($type, $text);
                break;
            default:
                throw new HpXmlError('unknown type');
        }
        $this->close('value');
        return $v;
    }

    /** @return mixed */
    private static function scalar(string $type, string $text)
    {
        switch ($type) {
            case 'int':
            case 'i4':
            case 'i8':
                $t = trim($text);
                if (!preg_match('/^[+-]?[0-9]{1,18}$/D', $t)) {
                    throw new HpXmlError('bad int');
                }
                return (int) $t;
            case 'boolean':
                return trim($text) === '1';
            case 'double':
                return (float) trim($text);
            case 'base64':
                $d = base64_decode(trim($text), false);
                return is_string($d) ? $d : '';
            case 'nil':
                return null;
            default:
                return $text;
        }
    }

    /** Decoded text up to the next tag ('' when a tag comes first). */
    private function text(): string
    {
        $t = $this->tokens[$this->pos] ?? null;
        if ($t === null || $t[0] !== 'text') {
            return '';
        }
        $this->pos++;
        return html_entity_decode($t[1], ENT_QUOTES | ENT_XML1, 'UTF-8');
    }

    private function isSpace(?array $t): bool
    {
        return $t !== null && $t[0] === 'text' && trim($t[1]) === '';
    }

    private function skipSpace(): void
    {
        while ($this->isSpace($this->tokens[$this->pos] ?? null)) {
            $this->pos++;
        }
    }

    private function peekOpen(string $name): bool
    {
        $this->skipSpace();
        $t = $this->tokens[$this->pos] ?? null;
        return $t !== null && $t[0] === 'open' && $t[1] === $name;
    }

    private function open(string $name): void
    {
        if (!$this->peekOpen($name)) {
            throw new HpXmlError("expected <$name>");
        }
        $this->pos++;
    }

    private function close(string $name): void
    {
        $this->skipSpace();
        $t = $this->tokens[$this->pos] ?? null;
        if ($t === null || $t[0] !== 'close' || $t[1] !== $name) {
            throw new HpXmlError("expected </$name>");
        }
        $this->pos++;
    }
}

/** XML-escapes text. */
function hp_xml(string $s): string
{
    return htmlspecialchars($s, ENT_XML1 | ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

/** A PHP value as an XML-RPC <value>: lists become arrays, maps structs. */
function hp_xmlrpc_value($v): string
{
    if (is_bool($v)) {
        return '<value><boolean>' . ($v ? '1' : '0') . '</boolean></value>';
    }
    if (is_int($v)) {
        return "<value><int>$v</int></value>";
    }
    if (is_float($v)) {
        return '<value><double>' . $v . '</double></value>';
    }
    if (is_array($v)) {
        if ($v === [] || array_keys($v) === range(0, count($v) - 1)) {
            $out = "<value><array><data>\n";
            foreach ($v as $item) {
                $out .= '  ' . hp_xmlrpc_value($item) . "\n";
            }
            return $out . '</data></array></value>';
        }
        $out = "<value><struct>\n";
        foreach ($v as $k => $item) {
            $out .= '  <member><name>' . hp_xml((string) $k) . '</name>' . hp_xmlrpc_value($item) . "</member>\n";
        }
        return $out . '</struct></value>';
    }
    return '<value><string>' . hp_xml((string) $v) . '</string></value>';
}

function hp_xmlrpc_response($result): string
{
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse>\n  <params>\n    <param>\n      "
        . hp_xmlrpc_value($result) . "\n    </param>\n  </params>\n</methodResponse>\n";
}

function hp_xmlrpc_fault(int $code, string $message): string
{
    $msg = hp_xml($message);
    return <<<XML
<?xml version="1.0" encoding="UTF-8"?>
<methodResponse>
  <fault>
    <value>
      <struct>
        <member>
          <name>faultCode</name>
          <value><int>$code</int></value>
        </member>
        <member>
          <name>faultString</name>
          <value><string>$msg</string></value>
        </member>
      </struct>
    </value>
  </fault>
</methodResponse>

XML;
}
