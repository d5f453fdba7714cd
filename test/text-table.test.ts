/**
 * The status CLI's table (src/util/text-table.ts): the layout it replaced from cli-table3 byte
 * for byte, and columns that line up in a terminal whatever the cells hold (wide CJK,
 * emoji, combining marks, fullwidth forms), with colour applied inside the borders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { displayWidth, renderTextTable } from '../src/util/text-table';

const ESCAPES = /\x1b\[[0-9;]*m/g;

/** The terminal column at which each border character of a line sits. */
function borderColumns(line: string): number[] {
  const columns: number[] = [];
  let column = 0;
  for (const char of line.replace(ESCAPES, '')) {
    if ('│┌┐└┘├┤┬┴┼'.includes(char)) columns.push(column);
    column += displayWidth(char);
  }
  return columns;
}

test('the layout cli-table3 drew for the status CLI, byte for byte', () => {
  assert.equal(
    renderTextTable(
      ['hostname', 'state', 'data'],
      [
        ['alpha', 'master', '{}'],
        ['charlie-long', 'slave', '{"k":1}'],
      ],
    ),
    [
      '┌──────────────┬────────┬─────────┐',
      '│ hostname     │ state  │ data    │',
      '├──────────────┼────────┼─────────┤',
      '│ alpha        │ master │ {}      │',
      '│ charlie-long │ slave  │ {"k":1} │',
      '└──────────────┴────────┴─────────┘',
    ].join('\n'),
  );
  assert.equal(
    renderTextTable(['a', 'bb'], []),
    ['┌───┬────┐', '│ a │ bb │', '└───┴────┘'].join('\n'),
    'no rows: no rule under the header',
  );
});

test('columns line up whatever the cells hold', () => {
  const cells = ['日本語テキスト', '😀x\u0301', '한국어 ＡＢ ｱ', 'e\u0301\u0301', 'plain', '', 'zero\u200bwidth', '🇫🇷 ok', '\ufe0f'];
  const rows = cells.map((cell, i) => [`host${i}`, cell, cell.repeat(2)]);
  const lines = renderTextTable(['hostname', 'data', 'twice'], rows).split('\n');
  const header = borderColumns(lines[1] as string);
  for (const line of lines) {
    const columns = borderColumns(line);
    assert.deepEqual(columns, header, `misaligned: ${line}`);
  }
});

test('display widths: ASCII 1, wide and emoji 2, combining marks and zero-width 0, controls 0', () => {
  assert.equal(displayWidth('abc'), 3);
  assert.equal(displayWidth('日本'), 4);
  assert.equal(displayWidth('😀'), 2);
  assert.equal(displayWidth('e\u0301'), 1);
  assert.equal(displayWidth('a\u200bb'), 2);
  assert.equal(displayWidth('ＡＢ'), 4);
  assert.equal(displayWidth('ｱ'), 1, 'halfwidth katakana');
  assert.equal(displayWidth('\u0007'), 0);
});

test('a row style colours the cells, never the borders or the padding', () => {
  const dim = (text: string): string => `\x1b[2m${text}\x1b[22m`;
  const table = renderTextTable(
    ['name', 'state'],
    [
      ['alpha', 'master'],
      ['bravo', 'left'],
    ],
    { style: [undefined, dim] },
  );
  const lines = table.split('\n');
  assert.equal(lines[3], '│ alpha │ master │');
  assert.equal(lines[4], '│ \x1b[2mbravo\x1b[22m │ \x1b[2mleft\x1b[22m   │');
  assert.deepEqual(borderColumns(lines[4] as string), borderColumns(lines[3] as string));
});
