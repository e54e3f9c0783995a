<?php
// The checks of `make e2e`, as an administrator would see them, through
// Zabbix 6.0's JSON-RPC API (and chart2.php for one graph). scripts/e2e/run.sh
// runs one phase at a time and changes the fake node between phases:
//   setup    the template imported, the proxy and the hosts created and linked;
//   busy     discovery, every value, the deliberately failing items, the
//            problems of a busy node, one graph checked by its pixels;
//   calm     errors cleared and queues drained: the problems resolve;
//   stopped  the node is gone: its unreachable trigger fires.
// usage: php drive.php RUN/drive.json PHASE

[$self, $config_file, $phase] = $argv + [null, null, null];
$cfg = json_decode(file_get_contents($config_file), true, 512, JSON_THROW_ON_ERROR);
$t0 = microtime(true);

const MODULE_TEMPLATE = 'Exalate by Zabbix agent module';
const ACTIVE_TEMPLATE = 'Exalate by Zabbix agent active';
const QUEUES = ['syncrequests', 'blobrequests', 'syncresponses', 'blobresponses', 'errorresponses', 'bloberrorresponses'];
// What the fake node serves while busy (run.sh's busy_relations), in QUEUES order.
const BUSY = [
	'AllContent' => [3, 1, 2, 0, 2, 1],
	'Service Desk' => [40, 0, 1, 0, 0, 0],
	'Jira Cloud/EU' => [1, 0, 0, 1, 1, 0],
	'Bücher & Söhne' => [0, 2, 0, 0, 0, 0],
];
// The fake node's default reason cycles (tests/fixtures/fake-exalate-node).
const ERROR_REASONS = ['NO_ISSUE_TO_CONNECT_TO', 'ISSUE_NOT_FOUND'];
const BLOB_ERROR_REASONS = ['CHECKSUM_MISMATCH', 'BLOB_NOT_FOUND'];
// A backlog threshold for one relation, by context macro (the default is 100).
const HOST_MACROS = [
	'{$EXALATE.STATS.INTERVAL}' => '5s',
	'{$EXALATE.PING.INTERVAL}' => '5s',
	'{$EXALATE.ERRORS.INTERVAL}' => '5s',
	// Unchanged lists are stored at least this often: a first value the
	// server drops (a proxied item just discovered) comes again soon.
	'{$EXALATE.ERRORS.HEARTBEAT}' => '10s',
	'{$EXALATE.QUEUE.MAX.TIME}' => '10s',
	'{$EXALATE.QUEUE.MAX:"Service Desk"}' => '5',
];

function say(string $line): void {
	global $t0;
	printf("[e2e %s %5.1fs] %s\n", $GLOBALS['phase'], microtime(true) - $t0, $line);
}

function fail(string $why): never {
	fwrite(STDERR, "FAIL ({$GLOBALS['phase']}): $why\n");
	exit(1);
}

function http(string $url, string $method = 'GET', string $body = '', array $headers = []): array {
	$context = stream_context_create(['http' => [
		'method' => $method, 'header' => implode("\r\n", $headers), 'content' => $body,
		'ignore_errors' => true, 'follow_location' => 0, 'timeout' => 120
	]]);
	$response = @file_get_contents($url, false, $context);
	if ($response === false) {
		fail("$method $url: no answer");
	}
	return [$http_response_header, $response];
}

function api(string $method, array $params = []): mixed {
	global $cfg, $token;
	$request = ['jsonrpc' => '2.0', 'method' => $method, 'params' => $params, 'id' => 1];
	$headers = ['Content-Type: application/json-rpc'];
	if ($token !== null && $method !== 'user.login') {
		$request['auth'] = $token;
	}
	[, $body] = http($cfg['api'].'api_jsonrpc.php', 'POST', json_encode($request), $headers);
	$reply = json_decode($body, true);
	if (!is_array($reply) || array_key_exists('error', $reply)) {
		fail("$method: ".(is_array($reply) ? json_encode($reply['error']) : substr($body, 0, 300)));
	}
	return $reply['result'];
}

// One request of Zabbix's own protocol (ZBXD header, little-endian length).
function zabbix_request(string $port, array $request): ?array {
	$socket = @fsockopen('127.0.0.1', (int) $port, $errno, $error, 5);
	if ($socket === false) {
		return null;
	}
	stream_set_timeout($socket, 10);
	$json = json_encode($request);
	fwrite($socket, "ZBXD\x01".pack('P', strlen($json)).$json);
	$reply = stream_get_contents($socket);
	fclose($socket);
	return (strlen($reply) > 13 && str_starts_with($reply, 'ZBXD')) ? json_decode(substr($reply, 13), true) : null;
}

// An item key as discovery fills {#RELATION} in (lesson 8: quoted only when needed).
function zkey(string $name, array $params): string {
	$quoted = array_map(function ($p) {
		return ($p !== '' && (strpbrk($p[0], "\" [") !== false || strpbrk($p, ",]") !== false))
			? '"'.str_replace('"', '\\"', $p).'"' : $p;
	}, $params);
	return $name.'['.implode(',', $quoted).']';
}

// until(SECONDS, WHAT, CHECK): CHECK returns the list of what is still wrong;
// repeated until it is empty.
function until(int $seconds, string $what, callable $check): void {
	$deadline = microtime(true) + $seconds;
	$last = microtime(true);
	while (true) {
		$wrong = $check();
		if ($wrong === []) {
			say("$what: ok");
			return;
		}
		if (microtime(true) > $deadline) {
			fail("$what, still after {$seconds}s:\n  ".implode("\n  ", array_slice($wrong, 0, 40))
				.(count($wrong) > 40 ? "\n  ... (".count($wrong).' in all)' : ''));
		}
		if (microtime(true) - $last > 15) {
			say("$what: waiting for ".count($wrong).", e.g. {$wrong[0]}");
			$last = microtime(true);
		}
		usleep(500000);
	}
}

function hosts(): array {
	global $cfg;
	// The active host first: the server's configuration cache knows it by the
	// time its agent starts and asks for its checks.
	$hosts = ['Exalate active' => ACTIVE_TEMPLATE, 'Exalate agentd' => MODULE_TEMPLATE, 'Exalate via proxy' => MODULE_TEMPLATE];
	if ($cfg['agent2_port'] !== '') {
		$hosts['Exalate agent2'] = MODULE_TEMPLATE;
	}
	return $hosts;
}

/** host name => [key => item] of every item of the linked hosts. */
function items_by_host(array $state): array {
	$items = api('item.get', [
		'hostids' => array_values($state['hostids']),
		'output' => ['itemid', 'hostid', 'key_', 'lastvalue', 'lastclock', 'state', 'error', 'type', 'flags'],
		'webitems' => false
	]);
	$names = array_flip($state['hostids']);
	$by_host = array_fill_keys(array_keys($state['hostids']), []);
	foreach ($items as $item) {
		$by_host[$names[$item['hostid']]][$item['key_']] = $item;
	}
	return $by_host;
}

/** Expanded names of the triggers firing on each host. */
function firing(array $state): array {
	$names = array_flip($state['hostids']);
	$by_host = array_fill_keys(array_keys($state['hostids']), []);
	foreach (api('trigger.get', [
		'hostids' => array_values($state['hostids']), 'output' => ['description', 'value'],
		'expandDescription' => true, 'selectHosts' => ['hostid'], 'filter' => ['value' => 1]
	]) as $trigger) {
		$by_host[$names[$trigger['hosts'][0]['hostid']]][] = $trigger['description'];
	}
	return array_map(function ($list) { sort($list); return $list; }, $by_host);
}

/** Every wrong value of the relations as the node serves them now ($counts by relation). */
function value_errors(array $items, string $host, array $counts): array {
	$wrong = [];
	$expect = function (string $key, callable $ok, string $want) use ($items, $host, &$wrong) {
		$item = $items[$key] ?? null;
		if ($item === null) {
			$wrong[] = "$host: no item $key";
		}
		elseif ($item['state'] != 0) {
			$wrong[] = "$host: $key unsupported: {$item['error']}";
		}
		elseif ($item['lastclock'] == 0 || !$ok($item['lastvalue'])) {
			$wrong[] = "$host: $key is ".var_export($item['lastclock'] == 0 ? null : $item['lastvalue'], true).", want $want";
		}
	};
	foreach ($counts as $relation => $c) {
		foreach (QUEUES as $i => $queue) {
			$expect(zkey('exalate.relation.queue', ['demo', $relation, $queue]),
				fn($v) => $v === (string) $c[$i], (string) $c[$i]);
		}
		$reasons = [];
		for ($i = 0; $i < $c[4]; $i++) {
			$reasons[ERROR_REASONS[$i % 2]] = ($reasons[ERROR_REASONS[$i % 2]] ?? 0) + 1;
		}
		for ($i = 0; $i < $c[5]; $i++) {
			$reasons[BLOB_ERROR_REASONS[$i % 2]] = ($reasons[BLOB_ERROR_REASONS[$i % 2]] ?? 0) + 1;
		}
		ksort($reasons);
		$expect(zkey('exalate.relation.error_reasons', ['demo', $relation]), function ($v) use ($reasons) {
			$got = json_decode($v, true);
			if (!is_array($got)) {
				return false;
			}
			ksort($got);
			return $got === $reasons;
		}, json_encode((object) $reasons));
		foreach ([4 => ['errorresponses', 'errorReason', ERROR_REASONS], 5 => ['bloberrorresponses', 'blobErrorReason', BLOB_ERROR_REASONS]]
				as $i => [$queue, $field, $cycle]) {
			$expect(zkey('exalate.queue.get', ['demo', $relation, $queue]), function ($v) use ($c, $i, $field, $cycle) {
				$list = json_decode($v, true);
				if (!is_array($list) || count($list) !== $c[$i]) {
					return false;
				}
				foreach ($list as $n => $entry) {
					if (($entry[$field] ?? null) !== $cycle[$n % 2] || array_key_exists('encodedPayload', $entry)) {
						return false;
					}
				}
				return true;
			}, "$c[$i] entries with $field");
		}
	}
	return $wrong;
}

// Lesson 5: "Check now" on the discovery master, again until discovery has run.
function discover(array $state, array $by_host): void {
	foreach ($by_host as $host => $items) {
		if (hosts()[$host] !== MODULE_TEMPLATE || count($items) > 2) {
			continue;
		}
		// The version too: its first check would come at random within its hour.
		foreach (['exalate.discovery', 'exalate.module.version'] as $key) {
			if (isset($items[$key]) && ($key === 'exalate.discovery' || $items[$key]['lastclock'] == 0)) {
				api('task.create', [['type' => 6, 'request' => ['itemid' => $items[$key]['itemid']]]]);
			}
		}
	}
}

// Deliberately failing: relation "Gone" (not on the node) and node "down" (nothing listens).
function expected_failure(string $key): ?string {
	if (str_contains($key, '[demo,Gone')) {
		return 'relation not found on the node (HTTP 400';
	}
	if (str_contains($key, '[down,') && !str_starts_with($key, 'exalate.node.ping')) {
		return 'connection refused';
	}
	return null;
}

function check_failures(array $by_host): array {
	$wrong = [];
	foreach ($by_host as $host => $items) {
		foreach ($items as $key => $item) {
			$want = expected_failure($key);
			$master = str_starts_with($key, 'exalate.relation.stats') || str_starts_with($key, 'exalate.queue.get');
			if ($want === null && $item['state'] != 0) {
				$wrong[] = "$host: $key unsupported: {$item['error']}";
			}
			elseif ($want !== null && $master && ($item['state'] != 1 || !str_contains($item['error'], $want))) {
				$wrong[] = "$host: $key should fail with \"$want...\"; state {$item['state']}, error \"{$item['error']}\"";
			}
			elseif ($want !== null && $item['state'] == 1 && !str_contains($item['error'], $want)) {
				$wrong[] = "$host: $key fails with \"{$item['error']}\", not \"$want...\"";
			}
		}
		foreach (['exalate.node.ping[demo]' => '1', 'exalate.node.ping[down]' => '0',
				'exalate.module.version' => $GLOBALS['cfg']['module_version']] as $key => $want) {
			$got = $items[$key]['lastvalue'] ?? null;
			if (($items[$key]['lastclock'] ?? 0) == 0 || $got !== $want) {
				$wrong[] = "$host: $key is ".var_export($got, true).", want $want";
			}
		}
	}
	return $wrong;
}

// No value, error or log line holds the shared secret or a token (JWT-shaped text).
function secret_leaks(array $by_host): array {
	global $cfg;
	$secret = trim(file_get_contents($cfg['secret_file']));
	$texts = [];
	foreach ($by_host as $host => $items) {
		foreach ($items as $key => $item) {
			$texts["$host: $key"] = $item['lastvalue'].' '.$item['error'];
		}
	}
	foreach (glob($cfg['run'].'/*.log') as $log) {
		$texts[$log] = file_get_contents($log);
	}
	$leaks = [];
	foreach ($texts as $where => $text) {
		if (str_contains($text, $secret) || preg_match('/eyJ[\w-]{8,}\.[\w-]{8,}/', $text)) {
			$leaks[] = "$where holds the secret or a token";
		}
	}
	return $leaks;
}

function expect_firing(array $state, array $want): callable {
	return function () use ($state, $want) {
		$wrong = [];
		sort($want);
		foreach (firing($state) as $host => $names) {
			if ($names !== $want) {
				$wrong[] = "$host: firing ".json_encode($names, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES)
					.', want '.json_encode($want, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
			}
		}
		return $wrong;
	};
}

// The graph "queues" of AllContent through chart2.php, as the frontend draws it,
// checked by its pixels: the size asked for, and each value's line at its height.
function check_graph(array $state): void {
	global $cfg;
	[$headers] = http($cfg['api'].'index.php', 'POST',
		http_build_query(['name' => 'Admin', 'password' => 'zabbix', 'enter' => 'Sign in']),
		['Content-Type: application/x-www-form-urlencoded']);
	$cookie = null;
	foreach ($headers as $h) {
		if (preg_match('/^Set-Cookie: (zbx_session=[^;]+)/i', $h, $m)) {
			$cookie = $m[1];
		}
	}
	$cookie !== null || fail('web login: no zbx_session cookie');
	$graphs = api('graph.get', ['hostids' => [$state['hostids']['Exalate agentd']], 'output' => ['graphid', 'name'],
		'filter' => ['name' => 'Exalate demo/AllContent: queues']]);
	count($graphs) === 1 || fail('no discovered graph "Exalate demo/AllContent: queues"');
	$width = 900;
	$height = 240;
	[, $png] = http($cfg['api'].'chart2.php?'.http_build_query(['graphid' => $graphs[0]['graphid'],
		'from' => 'now-1m', 'to' => 'now', 'width' => $width, 'height' => $height, 'legend' => 0,
		'profileIdx' => 'web.graphs.filter']), 'GET', '', ["Cookie: $cookie"]);
	file_put_contents($cfg['chart'], $png);
	$image = @imagecreatefromstring($png);
	$image !== false || fail('chart2.php: not an image: '.substr($png, 0, 200));
	// Width and height name the plot area; the axes and labels come around it.
	[$w, $h] = [imagesx($image), imagesy($image)];
	($w >= $width && $w < $width + 200 && $h >= $height && $h < $height + 200)
		|| fail("chart2.php: a {$w}x{$h} image for a {$width}x{$height} plot (an error drawn as an image?)");
	// Lines drawn later cover earlier ones of the same value: syncrequests (3),
	// errorresponses (2, over syncresponses), bloberrorresponses (1, over
	// blobrequests) and blobresponses (0) stay visible, in that order from the top.
	$lines = ['1A7C11' => 'syncrequests=3', 'FC6EA3' => 'errorresponses=2', '6C59DC' => 'bloberrorresponses=1', 'A54F10' => 'blobresponses=0'];
	$rows = array_fill_keys(array_keys($lines), []);
	for ($x = 0; $x < $w; $x++) {
		for ($y = 0; $y < $h; $y++) {
			$hex = sprintf('%06X', imagecolorat($image, $x, $y) & 0xFFFFFF);
			if (isset($rows[$hex])) {
				$rows[$hex][] = $y;
			}
		}
	}
	$previous = -1;
	$drawn = [];
	foreach ($lines as $color => $what) {
		count($rows[$color]) >= 20 || fail("chart2.php: the $what line (#$color) is not drawn (".count($rows[$color]).' pixels)');
		sort($rows[$color]);
		$median = $rows[$color][intdiv(count($rows[$color]), 2)];
		$median > $previous || fail("chart2.php: the $what line (#$color) is not below the line of a larger value");
		$previous = $median;
		$drawn[] = "$what ".count($rows[$color])."px at y=$median";
	}
	say("graph {$w}x{$h}: ".implode(', ', $drawn));
}

$token = null;
$token = api('user.login', ['username' => 'Admin', 'password' => 'zabbix']);
$state = is_file($cfg['state']) ? json_decode(file_get_contents($cfg['state']), true) : [];

switch ($phase) {
	case 'setup':
		// Lesson 6: the default host polls 127.0.0.1:10050, someone else's agent.
		$default = api('host.get', ['filter' => ['host' => 'Zabbix server'], 'output' => ['hostid']]);
		foreach ($default as $host) {
			api('host.update', ['hostid' => $host['hostid'], 'status' => 1]);
		}
		$proxy = api('proxy.create', ['host' => 'e2e-proxy', 'status' => 5])['proxyids'][0];
		// The packaged file, as an administrator imports it (lesson 8: 6.0's rules).
		$create = ['createMissing' => true, 'updateExisting' => true];
		api('configuration.import', ['format' => 'yaml', 'source' => file_get_contents($cfg['template']), 'rules' => [
			'groups' => ['createMissing' => true], 'templates' => $create, 'items' => $create,
			'discoveryRules' => $create, 'triggers' => $create, 'graphs' => $create, 'valueMaps' => $create,
			'templateDashboards' => $create, 'templateLinkage' => ['createMissing' => true]
		]]);
		$templates = api('template.get', ['output' => ['templateid', 'host'], 'filter' => ['host' => [MODULE_TEMPLATE, ACTIVE_TEMPLATE]],
			'selectDashboards' => 'count']);
		$templateids = array_column($templates, 'templateid', 'host');
		count($templateids) === 2 || fail('imported templates: '.json_encode(array_keys($templateids)));
		foreach ($templates as $template) {
			$template['dashboards'] >= 1 || fail("{$template['host']}: no dashboard");
		}
		$group = api('hostgroup.create', ['name' => 'Exalate e2e'])['groupids'][0];
		$macros = [];
		foreach (HOST_MACROS as $macro => $value) {
			$macros[] = ['macro' => $macro, 'value' => $value];
		}
		$ports = ['Exalate agentd' => $cfg['agentd_port'], 'Exalate via proxy' => $cfg['proxied_port'],
			'Exalate agent2' => $cfg['agent2_port']];
		$hostids = [];
		foreach (hosts() as $host => $template) {
			$params = ['host' => $host, 'groups' => [['groupid' => $group]], 'macros' => $macros,
				'templates' => [['templateid' => $templateids[$template]]]];
			if (isset($ports[$host])) {
				$params['interfaces'] = [['type' => 1, 'main' => 1, 'useip' => 1, 'ip' => '127.0.0.1', 'dns' => '',
					'port' => $ports[$host]]];
			}
			if ($host === 'Exalate via proxy') {
				$params['proxy_hostid'] = $proxy;
			}
			$hostids[$host] = api('host.create', $params)['hostids'][0];
			say("host \"$host\" linked to \"$template\"");
		}
		file_put_contents($cfg['state'], json_encode(['hostids' => $hostids]));
		break;

	case 'busy':
		$last_poke = 0;
		until(240, 'discovery: node and relation items on every host', function () use ($state, &$last_poke) {
			$by_host = items_by_host($state);
			if (microtime(true) - $last_poke > 3) {
				discover($state, $by_host);
				$last_poke = microtime(true);
			}
			$wrong = [];
			foreach ($by_host as $host => $items) {
				foreach (array_merge(array_keys(BUSY), ['Gone']) as $relation) {
					foreach (QUEUES as $queue) {
						$key = zkey('exalate.relation.queue', ['demo', $relation, $queue]);
						isset($items[$key]) || $wrong[] = "$host: no $key";
					}
				}
				foreach (['exalate.node.ping[demo]', 'exalate.node.ping[down]', 'exalate.relation.stats[down,AllContent]'] as $key) {
					isset($items[$key]) || $wrong[] = "$host: no $key";
				}
			}
			return $wrong;
		});
		until(240, 'values: queue counts, error reasons, pending error lists', function () use ($state) {
			$wrong = [];
			foreach (items_by_host($state) as $host => $items) {
				$wrong = array_merge($wrong, value_errors($items, $host, BUSY));
			}
			return $wrong;
		});
		until(120, 'no item unsupported but the deliberately failing ones, each with its message', fn() => check_failures(items_by_host($state)));
		until(120, 'problems of a busy node: errors pending, a backlog over its macro', expect_firing($state, [
			'Exalate demo/AllContent: attachment errors pending',
			'Exalate demo/AllContent: sync errors pending',
			'Exalate demo/Jira Cloud/EU: sync errors pending',
			'Exalate demo/Service Desk: sync requests backlog',
			'Exalate node down: unreachable or credentials rejected',
		]));
		$leaks = secret_leaks(items_by_host($state));
		$leaks === [] || fail(implode("\n", $leaks));
		say('no secret or token in any value, error or log');
		check_graph($state);
		break;

	case 'calm':
		until(180, 'values after the node cleared its errors and drained its queues', function () use ($state) {
			$wrong = [];
			foreach (items_by_host($state) as $host => $items) {
				$wrong = array_merge($wrong, value_errors($items, $host, array_map(fn() => [0, 0, 0, 0, 0, 0], BUSY)));
			}
			return $wrong;
		});
		until(120, 'the problems resolved', expect_firing($state, ['Exalate node down: unreachable or credentials rejected']));
		break;

	case 'stopped':
		until(180, 'the stopped node\'s unreachable trigger', expect_firing($state, [
			'Exalate node demo: unreachable or credentials rejected',
			'Exalate node down: unreachable or credentials rejected',
		]));
		break;

	case 'active-ready':
		// The active agent asks for its checks once at start, then every
		// RefreshActiveChecks (60 s at least): start it once the server's
		// configuration cache has the host, asking as the agent will.
		until(60, 'the server has the active host\'s checks', function () use ($cfg) {
			$reply = zabbix_request($cfg['server_port'], ['request' => 'active checks', 'host' => 'Exalate active']);
			$keys = array_column($reply['data'] ?? [], 'key');
			return in_array('exalate.discovery', $keys, true) ? [] : ['answer: '.json_encode($reply)];
		});
		break;

	case 'guest-url':
		// For the README's picture only (E2E_SCREENSHOT): guests may read the
		// hosts, and this URL signs in as guest and opens a host's dashboard.
		// (the template's group too: the widgets name its graph prototypes)
		$groups = api('hostgroup.get', ['filter' => ['name' => ['Exalate e2e', 'Templates/Applications']], 'output' => ['groupid']]);
		$guests = api('usergroup.get', ['filter' => ['name' => 'Guests'], 'output' => ['usrgrpid']])[0]['usrgrpid'];
		api('usergroup.update', ['usrgrpid' => $guests, 'users_status' => 0,
			'rights' => array_map(fn($g) => ['id' => $g['groupid'], 'permission' => 2], $groups)]);
		// A guest login ignores ?request=; it goes to the user's own start page.
		$guest = api('user.get', ['filter' => ['username' => 'guest'], 'output' => ['userid']])[0]['userid'];
		api('user.update', ['userid' => $guest, 'usrgrps' => [['usrgrpid' => $guests]], 'url' => 'zabbix.php?'
			.http_build_query(['action' => 'host.dashboard.view', 'hostid' => $state['hostids']['Exalate agentd'],
				'from' => 'now-1m', 'to' => 'now', 'kiosk' => 1])]);
		echo $cfg['api']."index.php?enter=guest\n";
		break;

	default:
		fail("unknown phase $phase");
}
