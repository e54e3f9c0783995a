<?php
// The checks of `make e2e`, as an administrator would see them, through
// the JSON-RPC API of Zabbix 6.0 or 7.0 ($cfg['zabbix']; chart2.php for one
// graph, on 7.0 also the dashboard widgets' own view action). scripts/e2e/run.sh
// runs one phase at a time and changes the fake node between phases:
//   setup    the template imported (7.0: the 6.0 file, then the 7.0 file
//            over it), the proxy and the hosts created and linked (7.0:
//            the active host to "Zabbix agent active" too, no key clash);
//   busy     discovery, every value, the deliberately failing items, the
//            problems of a busy node, one graph checked by its pixels; 7.0:
//            the item timeout (a node answering in 4 s: supported at 10 s,
//            "timeout after 3 s" at 3 s), the active agent's availability
//            (from "Zabbix agent active", linked beside ours),
//            the dashboard as the API and the widgets' own view serve it;
//            a stuck oldest event (not a queue that drains at the same
//            length) and the node's errors (its customer monitor) fire;
//            no errors item for a node without cmonitor_url; the node
//            totals and connections of the issuehub 4.0 API (node demo,
//            and node onprem watched with a Jira user alone: no relation
//            items), a status item per connection where "Get connections of
//            one node" is enabled, a paused connection and a total over its
//            threshold fire;
//   calm     errors cleared and queues drained, the stuck event leaves,
//            the node's errors go to 0, every connection ACTIVE: the
//            problems resolve;
//   stopped  the node is gone: its unreachable triggers fire.
// usage: php drive.php RUN/drive.json PHASE

[$self, $config_file, $phase] = $argv + [null, null, null];
$cfg = json_decode(file_get_contents($config_file), true, 512, JSON_THROW_ON_ERROR);
$t0 = microtime(true);

const MODULE_TEMPLATE = 'Exalate by Zabbix agent';
const ACTIVE_TEMPLATE = 'Exalate by Zabbix agent active';
// 7.0: Zabbix's own template, in the server's database, linked beside ours on
// the active host as on most active hosts; the agent's availability is its item.
const AGENT_ACTIVE_TEMPLATE = 'Zabbix agent active';
const AGENT_AVAILABILITY_KEY = 'zabbix[host,active_agent,available]';
const QUEUES = ['syncrequests', 'blobrequests', 'syncresponses', 'blobresponses', 'errorresponses', 'bloberrorresponses'];
// What the fake node serves while busy (run.sh's busy_relations), in QUEUES order.
const BUSY = [
	'AllContent' => [3, 1, 2, 0, 2, 1],
	'Service Desk' => [40, 0, 1, 0, 0, 0],
	'Jira Cloud/EU' => [1, 0, 0, 1, 1, 0],
	'Bücher & Söhne' => [0, 2, 0, 0, 0, 0],
	// The oldest entry stays while the others move on every 10 s (run.sh).
	'Stuck' => [5, 0, 0, 0, 0, 0],
	// Every entry moves on every 10 s, five at all times.
	'Drains' => [5, 0, 0, 0, 0, 0],
];
// What it serves once calm: all drained, but Stuck and Drains, which move on.
const CALM = [
	'AllContent' => [0, 0, 0, 0, 0, 0],
	'Service Desk' => [0, 0, 0, 0, 0, 0],
	'Jira Cloud/EU' => [0, 0, 0, 0, 0, 0],
	'Bücher & Söhne' => [0, 0, 0, 0, 0, 0],
	'Stuck' => [5, 0, 0, 0, 0, 0],
	'Drains' => [5, 0, 0, 0, 0, 0],
];
// The four waiting queues, each with its oldest event item and stuck trigger
// ("Oldest <what> is stuck").
const WAITING = ['syncrequests', 'blobrequests', 'syncresponses', 'blobresponses'];
const WAITING_WHAT = ['sync request', 'attachment request', 'sync response', 'attachment response'];
// The stuck event of relation Stuck: entry 0 of its sync requests (syncEventId 4 + index).
const STUCK_EVENT = '4';
// numErrors of node demo's customer monitor while busy (run.sh), then 0.
const NODE_ERRORS_BUSY = '3';
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
	// The same event the oldest for a minute is stuck (the default is 30m).
	'{$EXALATE.QUEUE.STUCK.TIME}' => '1m',
	'{$EXALATE.NODE.ERRORS.INTERVAL}' => '5s',
	'{$EXALATE.NODE.QUEUE.INTERVAL}' => '5s',
	'{$EXALATE.NODE.QUEUE.MAX.TIME}' => '10s',
	// The outgoing total (1500) is over the default 1000 for demo, not
	// over onprem's own threshold.
	'{$EXALATE.NODE.QUEUE.MAX:"onprem"}' => '5000',
	'{$EXALATE.CONNECTIONS.INTERVAL}' => '5s',
	'{$EXALATE.CONNECTION.INACTIVE.TIME}' => '20s',
];
// Exalate's own API (run.sh's busy_api and calm_api): node demo's totals and
// connections (name => status), the same node watched as "onprem".
const API_NODES = ['demo', 'onprem'];
const API_BUSY = ['outgoing' => '1500', 'incoming' => '420', 'connections' => [
	'AllContent' => 'ACTIVE', 'Jira Cloud/EU' => 'DEACTIVATED', "Zürich O'Brien / Süd" => 'PENDING']];
const API_CALM = ['outgoing' => '0', 'incoming' => '0', 'connections' => [
	'AllContent' => 'ACTIVE', 'Jira Cloud/EU' => 'ACTIVE', "Zürich O'Brien / Süd" => 'ACTIVE']];
// The host where "Get connections of one node" is enabled, for node demo:
// a status item per connection there, nowhere else.
const CONNECTIONS_HOST = 'Exalate agentd';
const CONNECTIONS_ITEM = 'exalate.node.connections[{$EXALATE.CONNECTIONS.NODE}]';
// 7.0: the slow node (answers in 4 s) only on this host; its relation Hasty
// gets the item timeout 3 s, Patient keeps the template's 10 s.
const SLOW_HOST = 'Exalate agentd';
const SLOW = ['Patient' => [5, 0, 0, 0, 0, 0]];
const SLOW_HOST_MACROS = ['{$EXALATE.TIMEOUT:"Hasty"}' => '3s'];
const OTHER_HOST_MACROS = ['{$EXALATE.LLD.FILTER.NODE.NOT_MATCHES}' => '^slow$'];

function v70(): bool {
	return $GLOBALS['cfg']['zabbix'] === '7.0';
}

/** The trigger names as the frontend shows them. */
function relation_trigger(string $relation, string $problem, string $node = 'demo'): string {
	return "Exalate: Relation [$node/$relation]: $problem";
}
function node_errors_trigger(string $node): string {
	return "Exalate: Node [$node]: Errors on the node";
}
function node_trigger(string $node): string {
	return "Exalate: Node [$node]: Unreachable or rejecting the credentials";
}
function node_api_trigger(string $node, string $problem): string {
	return "Exalate: Node [$node]: $problem";
}

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
	// 7.0 takes the session in a header (the auth field is deprecated).
	if ($token !== null && $method !== 'user.login') {
		if (v70()) {
			$headers[] = "Authorization: Bearer $token";
		}
		else {
			$request['auth'] = $token;
		}
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
function value_errors(array $items, string $host, array $counts, string $node = 'demo'): array {
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
			$expect(zkey('exalate.relation.queue', [$node, $relation, $queue]),
				fn($v) => $v === (string) $c[$i], (string) $c[$i]);
		}
		// The oldest event of each waiting queue: an id while it holds entries, else 0.
		foreach (WAITING as $i => $queue) {
			$key = zkey('exalate.relation.oldest', [$node, $relation, $queue]);
			if ($relation === 'Stuck' && $queue === 'syncrequests' && $GLOBALS['phase'] === 'busy') {
				$expect($key, fn($v) => $v === STUCK_EVENT, STUCK_EVENT);
			}
			else {
				$expect($key, fn($v) => ($v === '0') === ($c[$i] === 0) && ctype_digit($v), $c[$i] === 0 ? '0' : 'an event id');
			}
		}
		$reasons = [];
		for ($i = 0; $i < $c[4]; $i++) {
			$reasons[ERROR_REASONS[$i % 2]] = ($reasons[ERROR_REASONS[$i % 2]] ?? 0) + 1;
		}
		for ($i = 0; $i < $c[5]; $i++) {
			$reasons[BLOB_ERROR_REASONS[$i % 2]] = ($reasons[BLOB_ERROR_REASONS[$i % 2]] ?? 0) + 1;
		}
		ksort($reasons);
		$expect(zkey('exalate.relation.error_reasons', [$node, $relation]), function ($v) use ($reasons) {
			$got = json_decode($v, true);
			if (!is_array($got)) {
				return false;
			}
			ksort($got);
			return $got === $reasons;
		}, json_encode((object) $reasons));
		foreach ([4 => ['errorresponses', 'errorReason', ERROR_REASONS], 5 => ['bloberrorresponses', 'blobErrorReason', BLOB_ERROR_REASONS]]
				as $i => [$queue, $field, $cycle]) {
			$expect(zkey('exalate.queue.get', [$node, $relation, $queue]), function ($v) use ($c, $i, $field, $cycle) {
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

/** Every wrong value of the 4.0 API items ($api: API_BUSY or API_CALM). */
function api_value_errors(array $items, string $host, array $api): array {
	$wrong = [];
	$expect = function (string $key, string $want) use ($items, $host, &$wrong) {
		$item = $items[$key] ?? null;
		if ($item === null) {
			$wrong[] = "$host: no item $key";
		}
		elseif ($item['state'] != 0) {
			$wrong[] = "$host: $key unsupported: {$item['error']}";
		}
		elseif ($item['lastclock'] == 0 || $item['lastvalue'] !== $want) {
			$wrong[] = "$host: $key is ".var_export($item['lastclock'] == 0 ? null : $item['lastvalue'], true).', want '.var_export($want, true);
		}
	};
	$inactive = array_filter($api['connections'], fn($status) => $status !== 'ACTIVE');
	foreach (API_NODES as $node) {
		$expect("exalate.node.queue[$node,outgoing]", $api['outgoing']);
		$expect("exalate.node.queue[$node,incoming]", $api['incoming']);
		$expect("exalate.node.connections.inactive[$node]", (string) count($inactive));
		$expect("exalate.node.connections.inactive.names[$node]",
			implode(', ', array_map(fn($name, $status) => "$name ($status)", array_keys($inactive), $inactive)));
	}
	// A status item per connection where the template item is enabled.
	$statuses = [];
	foreach ($items as $key => $item) {
		if (str_starts_with($key, 'exalate.connection.status[')) {
			$statuses[$key] = $item;
		}
	}
	if ($host === CONNECTIONS_HOST) {
		foreach ($api['connections'] as $name => $status) {
			$expect(zkey('exalate.connection.status', [$name]), $status);
		}
		count($statuses) === count($api['connections'])
			|| $wrong[] = "$host: ".count($statuses).' connection status items: '.json_encode(array_keys($statuses), JSON_UNESCAPED_UNICODE);
	}
	elseif ($statuses !== []) {
		$wrong[] = "$host: connection status items, though ".CONNECTIONS_ITEM.' is disabled: '.json_encode(array_keys($statuses), JSON_UNESCAPED_UNICODE);
	}
	return $wrong;
}

// Lesson 5: "Check now" on the discovery master, again until discovery has run.
function discover(array $state, array $by_host): void {
	foreach ($by_host as $host => $items) {
		// Discovered from exalate.discovery: the node items are there (the
		// connection discovery of one host discovers from another item).
		if (hosts()[$host] !== MODULE_TEMPLATE || isset($items['exalate.node.ping[demo]'])) {
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
	// 7.0: the item timeout (3 s, a host macro) reaches the module.
	if (str_contains($key, '[slow,Hasty')) {
		return 'timeout after 3 s';
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
		$want_values = ['exalate.node.ping[demo]' => '1', 'exalate.node.ping[down]' => '0',
			'exalate.node.ping[onprem]' => '1',
			'exalate.node.errors[demo]' => NODE_ERRORS_BUSY,
			'exalate.module.version' => $GLOBALS['cfg']['module_version']];
		if (v70() && $host === SLOW_HOST) {
			$want_values['exalate.node.ping[slow]'] = '1';
		}
		if (v70() && hosts()[$host] === ACTIVE_TEMPLATE) {
			// The active agent's availability (7.0), the item of "Zabbix
			// agent active" linked beside ours: 1, available.
			$want_values[AGENT_AVAILABILITY_KEY] = '1';
		}
		foreach ($want_values as $key => $want) {
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
	$cmonitor_token = trim(file_get_contents($cfg['cmonitor_token_file']));
	$api_password = trim(file_get_contents($cfg['api_password_file']));
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
		if (str_contains($text, $secret) || str_contains($text, $cmonitor_token) || str_contains($text, $api_password)
				|| preg_match('/eyJ[\w-]{8,}\.[\w-]{8,}/', $text)) {
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
/** A session of the frontend, as a browser signs in: its cookie. */
function web_cookie(): string {
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
	return $cookie;
}

// 7.0: the template's dashboard through the API (two honeycombs of current
// values beside the two graph prototypes), and each honeycomb's data as the
// frontend's widget view action serves it on host "Exalate agentd": a cell
// per queue item with the value the node serves.
function check_dashboard(array $state): void {
	global $cfg;
	$dashboards = api('templatedashboard.get', ['templateids' => [$state['templateids'][MODULE_TEMPLATE]],
		'output' => 'extend', 'selectPages' => 'extend']);
	count($dashboards) === 1 || fail('template dashboards: '.count($dashboards));
	$widgets = $dashboards[0]['pages'][0]['widgets'];
	$types = array_column($widgets, 'type');
	sort($types);
	$types === ['graphprototype', 'graphprototype', 'graphprototype', 'honeycomb', 'honeycomb']
		|| fail('dashboard widgets: '.json_encode($types));
	// As 7.0 exports the imported template: the file is in 7.0's own form.
	$export = api('configuration.export', ['format' => 'yaml', 'options' => ['templates' => [$state['templateids'][MODULE_TEMPLATE]]]]);
	file_put_contents($cfg['run'].'/exported_7.0.yaml', $export);
	require_once '/usr/share/zabbix/vendor/autoload.php';
	// The order of widgets and of their fields means nothing: by place, by name.
	$dashboards_of = function (string $yaml): array {
		$dashboards = Symfony\Component\Yaml\Yaml::parse($yaml)['zabbix_export']['templates'][0]['dashboards'];
		foreach ($dashboards as &$dashboard) {
			foreach ($dashboard['pages'] as &$page) {
				foreach ($page['widgets'] as &$widget) {
					usort($widget['fields'], fn($a, $b) => strcmp($a['name'], $b['name']));
				}
				unset($widget);
				usort($page['widgets'], fn($a, $b) => [(int) ($a['y'] ?? 0), (int) ($a['x'] ?? 0)] <=> [(int) ($b['y'] ?? 0), (int) ($b['x'] ?? 0)]);
			}
			unset($page);
		}
		return $dashboards;
	};
	$ours = $dashboards_of(file_get_contents($cfg['template']));
	$exported = $dashboards_of($export);
	$ours == $exported || fail("the dashboard as 7.0 exports it differs from the file's:\n".json_encode($exported)."\n".json_encode($ours));
	say('dashboard: 5 widgets (2 honeycombs, 3 graph prototypes), exported by 7.0 exactly as the file has them');
	$cookie = web_cookie();
	$hostid = $state['hostids']['Exalate agentd'];
	$want = [
		'Queued now' => fn(string $queue) => true,
		'Pending errors now' => fn(string $queue) => in_array($queue, ['errorresponses', 'bloberrorresponses'], true),
	];
	foreach ($widgets as $widget) {
		if ($widget['type'] !== 'honeycomb') {
			continue;
		}
		isset($want[$widget['name']]) || fail("unexpected honeycomb \"{$widget['name']}\"");
		// The widget's fields as the dashboard posts them (items.0 -> fields[items][0]).
		$form = ['templateid' => $dashboards[0]['templateid'], 'name' => $widget['name'],
			'fields' => ['hostids' => [$hostid]]];
		foreach ($widget['fields'] as $field) {
			$path = explode('.', $field['name']);
			$node = &$form['fields'];
			foreach ($path as $part) {
				$node = &$node[$part];
			}
			$node = $field['value'];
			unset($node);
		}
		[, $body] = http($cfg['api'].'zabbix.php?action=widget.honeycomb.view', 'POST', http_build_query($form),
			['Content-Type: application/x-www-form-urlencoded', "Cookie: $cookie"]);
		$reply = json_decode($body, true);
		$cells = $reply['cells'] ?? null;
		is_array($cells) || fail("honeycomb \"{$widget['name']}\": no cells in ".substr($body, 0, 300));
		$got = array_column($cells, 'value', 'key_');
		$expected = [];
		foreach (BUSY + SLOW as $relation => $counts) {
			$node = isset(SLOW[$relation]) ? 'slow' : 'demo';
			foreach (QUEUES as $i => $queue) {
				if ($want[$widget['name']]($queue)) {
					$expected[zkey('exalate.relation.queue', [$node, $relation, $queue])] = (string) $counts[$i];
				}
			}
		}
		foreach ($expected as $key => $value) {
			($got[$key] ?? null) === $value
				|| fail("honeycomb \"{$widget['name']}\": $key is ".var_export($got[$key] ?? null, true).", want $value");
		}
		foreach (array_keys($got) as $key) {
			preg_match('/,(\w+)\]$/', $key, $m);
			str_starts_with($key, 'exalate.relation.queue[') && $want[$widget['name']]($m[1])
				|| fail("honeycomb \"{$widget['name']}\" shows $key");
		}
		say("dashboard: honeycomb \"{$widget['name']}\" shows ".count($got).' current values, each as the node serves it');
	}
}

function check_graph(array $state): void {
	global $cfg;
	$cookie = web_cookie();
	$graphs = api('graph.get', ['hostids' => [$state['hostids']['Exalate agentd']], 'output' => ['graphid', 'name'],
		'filter' => ['name' => 'Exalate: Relation [demo/AllContent]: Queues']]);
	count($graphs) === 1 || fail('no discovered graph "Exalate: Relation [demo/AllContent]: Queues"');
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
		// 7.0 names a proxy and its mode apart (an active proxy: operating_mode 0).
		$proxy = v70()
			? api('proxy.create', ['name' => 'e2e-proxy', 'operating_mode' => 0])['proxyids'][0]
			: api('proxy.create', ['host' => 'e2e-proxy', 'status' => 5])['proxyids'][0];
		// The packaged file, as an administrator imports it (lesson 8: 6.0's
		// rules; 7.0 rejects "groups": template_groups and host_groups).
		$create = ['createMissing' => true, 'updateExisting' => true];
		$groups = v70() ? ['template_groups' => $create, 'host_groups' => $create] : ['groups' => ['createMissing' => true]];
		$rules = $groups + ['templates' => $create, 'items' => $create,
			'discoveryRules' => $create, 'triggers' => $create, 'graphs' => $create, 'valueMaps' => $create,
			'templateDashboards' => $create, 'templateLinkage' => ['createMissing' => true]];
		if (v70()) {
			// Zabbix 7.0's own validator, strict, as the frontend runs it on import.
			exec('php '.escapeshellarg(__DIR__.'/../../packaging/template/zabbix-validate.php').' /usr/share/zabbix '
				.escapeshellarg($cfg['template']).' 2>&1', $out, $rc);
			($rc === 0 && end($out) === 'valid') || fail("Zabbix 7.0's import validator: ".implode("\n", $out));
			say("Zabbix 7.0's own import validator (C70XmlValidator, strict) accepts the 7.0 file");
			// The 6.0 file first: the conversion path of users with old
			// exports; then the 7.0 file over it, updating it in place (same uuids).
			api('configuration.import', ['format' => 'yaml', 'source' => file_get_contents($cfg['template_60']), 'rules' => $rules]);
			$old = api('template.get', ['output' => ['templateid'], 'filter' => ['host' => [MODULE_TEMPLATE, ACTIVE_TEMPLATE]]]);
			count($old) === 2 || fail('the 6.0 file imported into 7.0: '.count($old).' templates');
			say('the 6.0 file imports into 7.0 (converted)');
		}
		api('configuration.import', ['format' => 'yaml', 'source' => file_get_contents($cfg['template']), 'rules' => $rules]);
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
		$beside = [];
		if (v70()) {
			$official = api('template.get', ['output' => ['templateid'], 'filter' => ['host' => AGENT_ACTIVE_TEMPLATE]]);
			count($official) === 1 || fail('"'.AGENT_ACTIVE_TEMPLATE.'": '.count($official).' templates; named like it: '
				.json_encode(array_column(api('template.get', ['output' => ['host'], 'search' => ['host' => 'agent active']]), 'host')));
			$beside[ACTIVE_TEMPLATE] = $official[0]['templateid'];
		}
		$hostids = [];
		foreach (hosts() as $host => $template) {
			$host_macros = $macros;
			if (v70()) {
				foreach ($host === SLOW_HOST ? SLOW_HOST_MACROS : OTHER_HOST_MACROS as $macro => $value) {
					$host_macros[] = ['macro' => $macro, 'value' => $value];
				}
			}
			$params = ['host' => $host, 'groups' => [['groupid' => $group]], 'macros' => $host_macros,
				'templates' => [['templateid' => $templateids[$template]]]];
			if (isset($beside[$template])) {
				$params['templates'][] = ['templateid' => $beside[$template]];
			}
			if (isset($ports[$host])) {
				$params['interfaces'] = [['type' => 1, 'main' => 1, 'useip' => 1, 'ip' => '127.0.0.1', 'dns' => '',
					'port' => $ports[$host]]];
			}
			if ($host === 'Exalate via proxy') {
				$params += v70() ? ['monitored_by' => 1, 'proxyid' => $proxy] : ['proxy_hostid' => $proxy];
			}
			if ($host === CONNECTIONS_HOST) {
				$params['macros'][] = ['macro' => '{$EXALATE.CONNECTIONS.NODE}', 'value' => 'demo'];
			}
			// A key inherited from two templates fails here ("Cannot inherit item with key ...").
			$hostids[$host] = api('host.create', $params)['hostids'][0];
			if ($host === CONNECTIONS_HOST) {
				// As an administrator enables the template's disabled item on a host.
				$item = api('item.get', ['hostids' => [$hostids[$host]], 'filter' => ['key_' => CONNECTIONS_ITEM],
					'output' => ['itemid', 'status']]);
				(count($item) === 1 && $item[0]['status'] == 1) || fail("$host: ".CONNECTIONS_ITEM.' not there, disabled: '.json_encode($item));
				api('item.update', ['itemid' => $item[0]['itemid'], 'status' => 0]);
				say("host \"$host\": ".CONNECTIONS_ITEM.' enabled, {$EXALATE.CONNECTIONS.NODE} = demo');
			}
			if (isset($beside[$template])) {
				$linked = api('host.get', ['hostids' => [$hostids[$host]], 'output' => ['hostid'],
					'selectParentTemplates' => ['host']])[0]['parentTemplates'];
				$names = array_column($linked, 'host');
				$want = [AGENT_ACTIVE_TEMPLATE, $template];
				sort($names);
				sort($want);
				$names === $want || fail("$host: linked to ".json_encode($names));
				// The availability item is the official template's.
				$theirs = api('item.get', ['hostids' => [$beside[$template]], 'filter' => ['key_' => AGENT_AVAILABILITY_KEY],
					'output' => ['itemid']]);
				$ours = api('item.get', ['hostids' => [$hostids[$host]], 'filter' => ['key_' => AGENT_AVAILABILITY_KEY],
					'output' => ['templateid']]);
				(count($theirs) === 1 && count($ours) === 1 && $ours[0]['templateid'] === $theirs[0]['itemid'])
					|| fail("$host: ".AGENT_AVAILABILITY_KEY.' not inherited from "'.AGENT_ACTIVE_TEMPLATE.'": '.json_encode([$theirs, $ours]));
				say("host \"$host\" linked to \"$template\" and \"".AGENT_ACTIVE_TEMPLATE.'" (no inherited key clashes)');
			}
			else {
				say("host \"$host\" linked to \"$template\"");
			}
		}
		file_put_contents($cfg['state'], json_encode(['hostids' => $hostids, 'templateids' => $templateids]));
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
				foreach (['exalate.node.ping[demo]', 'exalate.node.ping[down]', 'exalate.relation.stats[down,AllContent]',
						'exalate.node.errors[demo]'] as $key) {
					isset($items[$key]) || $wrong[] = "$host: no $key";
				}
				// Only nodes with a customer monitor endpoint ({#CMONITOR} 1) get the errors item.
				foreach (['exalate.node.errors[down]', 'exalate.node.errors[slow]', 'exalate.node.errors[onprem]'] as $key) {
					isset($items[$key]) && $wrong[] = "$host: $key, though that node has no cmonitor_url";
				}
				// Only nodes with API credentials ({#API} 1) get the 4.0 API items;
				// node onprem (no relations) no relation items.
				foreach (API_NODES as $node) {
					foreach (["exalate.node.queue[$node,outgoing]", "exalate.node.queue[$node,incoming]",
							"exalate.node.connections[$node]", "exalate.node.connections.inactive[$node]",
							"exalate.node.connections.inactive.names[$node]", "exalate.node.ping[$node]"] as $key) {
						isset($items[$key]) || $wrong[] = "$host: no $key";
					}
				}
				foreach (array_keys($items) as $key) {
					if (preg_match('/^exalate\.node\.(queue|connections)[.\w]*\[(down|slow)[,\]]/', $key)) {
						$wrong[] = "$host: $key, though that node has no API credentials";
					}
					if (str_contains($key, '[onprem,') && !str_starts_with($key, 'exalate.node.queue[')) {
						$wrong[] = "$host: $key, though node onprem has no relations";
					}
				}
				if (v70()) {
					// The slow node only where the filter macro lets it in.
					$slow = ['exalate.relation.stats[slow,Patient]', 'exalate.relation.stats[slow,Hasty]', 'exalate.node.ping[slow]'];
					foreach ($slow as $key) {
						if ($host === SLOW_HOST) {
							isset($items[$key]) || $wrong[] = "$host: no $key";
						}
						elseif (isset($items[$key])) {
							$wrong[] = "$host: $key, though {\$EXALATE.LLD.FILTER.NODE.NOT_MATCHES} is ^slow$";
						}
					}
				}
			}
			return $wrong;
		});
		until(240, 'values: queue counts, error reasons, pending error lists', function () use ($state) {
			$wrong = [];
			foreach (items_by_host($state) as $host => $items) {
				$wrong = array_merge($wrong, value_errors($items, $host, BUSY));
				if (v70() && $host === SLOW_HOST) {
					// A node answering in 4 s, within the item's 10 s.
					$wrong = array_merge($wrong, value_errors($items, $host, SLOW, 'slow'));
				}
			}
			return $wrong;
		});
		until(180, 'the 4.0 API: node totals, connections not active, a status per connection on '.CONNECTIONS_HOST,
			function () use ($state) {
				$wrong = [];
				foreach (items_by_host($state) as $host => $items) {
					$wrong = array_merge($wrong, api_value_errors($items, $host, API_BUSY));
				}
				return $wrong;
			});
		until(120, 'no item unsupported but the deliberately failing ones, each with its message', fn() => check_failures(items_by_host($state)));
		if (v70()) {
			// The item timeout reaches the module: the node answers in 4 s.
			$items = items_by_host($state)[SLOW_HOST];
			foreach (['Patient', 'Hasty'] as $relation) {
				$item = $items["exalate.relation.stats[slow,$relation]"];
				say("item timeout: exalate.relation.stats[slow,$relation] (".($relation === 'Hasty' ? '3 s' : '10 s').'): '
					.($item['state'] == 0 ? "supported, syncrequests ".$items["exalate.relation.queue[slow,$relation,syncrequests]"]['lastvalue'] : "unsupported: {$item['error']}"));
			}
		}
		// Stuck: every waiting queue that holds entries and does not move (the
		// busy node's are still, and Stuck's oldest stays), not Drains.
		$stuck = [];
		foreach (BUSY as $relation => $c) {
			foreach (WAITING as $i => $queue) {
				if ($c[$i] > 0 && $relation !== 'Drains') {
					$stuck[] = relation_trigger($relation, 'Oldest '.WAITING_WHAT[$i].' is stuck');
				}
			}
		}
		until(150, 'problems of a busy node: errors pending, a backlog over its macro, stuck events, the node\'s errors',
			expect_firing($state, array_merge($stuck, [
				relation_trigger('AllContent', 'Attachment errors are pending'),
				relation_trigger('AllContent', 'Sync errors are pending'),
				relation_trigger('Jira Cloud/EU', 'Sync errors are pending'),
				relation_trigger('Service Desk', 'Too many sync requests queued'),
				node_errors_trigger('demo'),
				node_trigger('down'),
				node_api_trigger('demo', 'Connections not active'),
				node_api_trigger('onprem', 'Connections not active'),
				node_api_trigger('demo', 'Too many outgoing sync transactions queued'),
			])));
		say('stuck: '.count($stuck).' still queues and the oldest sync request of "Stuck" fired; "Drains", as long and as full, did not');
		// The problem's name: the event's id and the time.
		$want_name = 'Exalate: Relation [demo/Stuck]: Sync request event '.STUCK_EVENT.' stuck, the oldest for over 1m';
		$want_errors = 'Exalate: Node [demo]: '.NODE_ERRORS_BUSY.' errors on the node (over 0)';
		// The paused connections by name, from the second item of the expression.
		$want_inactive = "Exalate: Node [demo]: 2 connections not active for 20s: Jira Cloud/EU (DEACTIVATED), Zürich O'Brien / Süd (PENDING)";
		foreach ($state['hostids'] as $host => $hostid) {
			$names = array_column(api('problem.get', ['hostids' => [$hostid], 'output' => ['name']]), 'name');
			foreach ([$want_name, $want_errors, $want_inactive] as $want) {
				in_array($want, $names, true) || fail("$host: no problem \"$want\"; problems: ".json_encode($names, JSON_UNESCAPED_UNICODE));
			}
		}
		say("problem names: \"$want_name\", \"$want_errors\", \"$want_inactive\"");
		$leaks = secret_leaks(items_by_host($state));
		$leaks === [] || fail(implode("\n", $leaks));
		say('no secret or token in any value, error or log');
		check_graph($state);
		if (v70()) {
			check_dashboard($state);
		}
		break;

	case 'calm':
		until(180, 'values after the node cleared its errors and drained its queues', function () use ($state) {
			$wrong = [];
			foreach (items_by_host($state) as $host => $items) {
				$wrong = array_merge($wrong, value_errors($items, $host, CALM));
				$errors = $items['exalate.node.errors[demo]']['lastvalue'] ?? null;
				$errors === '0' || $wrong[] = "$host: exalate.node.errors[demo] is ".var_export($errors, true).', want 0';
				$wrong = array_merge($wrong, api_value_errors($items, $host, API_CALM));
			}
			return $wrong;
		});
		until(120, 'the problems resolved (the stuck event left, the node\'s errors gone, every connection ACTIVE, nothing queued)',
			expect_firing($state, [node_trigger('down')]));
		break;

	case 'stopped':
		until(180, 'the stopped node\'s unreachable triggers (demo, and onprem through the 4.0 API)',
			expect_firing($state, [node_trigger('demo'), node_trigger('down'), node_trigger('onprem')]));
		break;

	case 'active-ready':
		// The active agent asks for its checks once at start, then every
		// RefreshActiveChecks (60 s at least): start it once the server's
		// configuration cache has the host, asking as the agent will.
		until(60, 'the server has the active host\'s checks', function () use ($cfg) {
			$request = ['request' => 'active checks', 'host' => 'Exalate active'];
			if (v70()) {
				$request += ['version' => '7.0.22', 'variant' => 1, 'config_revision' => 0, 'session' => md5('e2e')];
			}
			$reply = zabbix_request($cfg['server_port'], $request);
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
		$rights = array_map(fn($g) => ['id' => $g['groupid'], 'permission' => 2], $groups);
		api('usergroup.update', ['usrgrpid' => $guests, 'users_status' => 0]
			+ (v70() ? ['hostgroup_rights' => $rights] : ['rights' => $rights]));
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
