/**
 * Argument parsing for the contributor tools: `--help` prints the usage and exits 0; an unknown
 * or malformed option prints why and the usage and exits 2, instead of a stack trace.
 */
export function toolArgs<T>(usage: string, parse: () => T, argv: readonly string[] = process.argv.slice(2)): T {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage);
    process.exit(0);
  }
  try {
    return parse();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) throw err;
    console.error(`${(err as Error).message}\n${usage}`);
    process.exit(2);
  }
}
