<?php
// Validates a template export with Zabbix's own import validator: the
// frontend's YAML reader (Symfony YAML) and C60XmlValidator (C70XmlValidator
// for a 7.0 file, with a 7.0 frontend), as the
// frontend runs them on "Import" before anything reaches the database.
// usage: php zabbix-validate.php FRONTEND_DIR TEMPLATE.yaml
// FRONTEND_DIR is the frontend's document root (/usr/share/zabbix in
// Debian's zabbix-frontend-php). Exits 0 and prints "valid" when it passes.

[$self, $frontend, $file] = $argv + [null, null, null];
if ($frontend === null || $file === null) {
	fwrite(STDERR, "usage: php zabbix-validate.php FRONTEND_DIR TEMPLATE.yaml\n");
	exit(2);
}

// The few frontend helpers the validator calls (translations are identity).
if (!function_exists('_')) {
	function _($s) { return $s; }
}
function _s($format, ...$args) { return vsprintf($format, $args); }
function _x($s, $context) { return $s; }
function zbx_is_int($value) {
	return is_int($value) || (is_string($value) && preg_match('/^-?\d+$/', $value) === 1);
}

require_once $frontend.'/include/defines.inc.php';
foreach (['xml/CXmlConstantValue', 'xml/CXmlConstantName', 'import/converters/CImportDataNormalizer',
		'import/readers/CImportReader', 'import/readers/CYamlImportReader',
		'import/validators/CXmlValidatorGeneral'] as $class) {
	require_once $frontend.'/include/classes/'.$class.'.php';
}
// Debian unbundles Symfony; upstream tarballs ship it under vendor/.
foreach (['/usr/share/php/Symfony/Component/Yaml/autoload.php', $frontend.'/vendor/autoload.php'] as $autoload) {
	if (is_file($autoload)) {
		require_once $autoload;
		break;
	}
}

try {
	$data = (new CYamlImportReader())->read(file_get_contents($file));
	if (!array_key_exists('zabbix_export', $data) || !is_array($data['zabbix_export'])) {
		throw new Exception('no zabbix_export');
	}
	// The validator of the file's own version: 6.0's or 7.0's (a 7.0 frontend).
	$version = $data['zabbix_export']['version'] ?? null;
	if (!in_array($version, ['6.0', '7.0'], true)) {
		throw new Exception('zabbix_export/version is '.var_export($version, true).', not \'6.0\' or \'7.0\'');
	}
	$validator = 'C'.str_replace('.', '', $version).'XmlValidator';
	// 7.0's validator names the media types through this helper.
	if (is_file($frontend.'/include/classes/helpers/CMediatypeHelper.php')) {
		require_once $frontend.'/include/classes/helpers/CMediatypeHelper.php';
	}
	require_once $frontend.'/include/classes/import/validators/'.$validator.'.php';
	(new $validator('yaml'))->setStrict(true)->validate($data['zabbix_export'], '/zabbix_export');
}
catch (Throwable $e) {
	fwrite(STDOUT, 'invalid: '.$e->getMessage()."\n");
	exit(1);
}
echo "valid\n";
