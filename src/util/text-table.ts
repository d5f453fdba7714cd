/**
 * A boxed text table for a terminal, in the few lines the status CLI needs: a header, one
 * line per row, columns as wide as their widest cell. Written here rather than taken from
 * cli-table3, which brought six packages into every install for this one table.
 *
 *   ┌──────────┬─────────┐
 *   │ hostname │ state   │
 *   ├──────────┼─────────┤
 *   │ alpha    │ master  │
 *   └──────────┴─────────┘
 */

/** Combining marks, zero-width characters and variation selectors take no column. */
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\u200b-\u200f\u2060-\u2064\ufe00-\ufe0f]$/u;
/** Emoji shown as pictures take two columns, as do the East Asian wide and fullwidth blocks. */
const EMOJI = /^\p{Emoji_Presentation}$/u;

function isWide(codePoint: number): boolean {
  return (
    (codePoint >= 0x1100 && codePoint <= 0x115f) ||
    (codePoint >= 0x2e80 && codePoint <= 0x303e) ||
    (codePoint >= 0x3041 && codePoint <= 0x33ff) ||
    (codePoint >= 0x3400 && codePoint <= 0x4dbf) ||
    (codePoint >= 0x4e00 && codePoint <= 0x9fff) ||
    (codePoint >= 0xa000 && codePoint <= 0xa4cf) ||
    (codePoint >= 0xac00 && codePoint <= 0xd7a3) ||
    (codePoint >= 0xf900 && codePoint <= 0xfaff) ||
    (codePoint >= 0xfe30 && codePoint <= 0xfe4f) ||
    (codePoint >= 0xff00 && codePoint <= 0xff60) ||
    (codePoint >= 0xffe0 && codePoint <= 0xffe6) ||
    (codePoint >= 0x20000 && codePoint <= 0x3fffd)
  );
}

/** Columns `text` takes in a terminal (escape sequences are never in a cell: colour is applied after padding). */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text) {
    const codePoint = char.codePointAt(0) as number;
    if (codePoint < 0x7f) width += codePoint >= 0x20 ? 1 : 0;
    else if (ZERO_WIDTH.test(char)) continue;
    else width += isWide(codePoint) || EMOJI.test(char) ? 2 : 1;
  }
  return width;
}

export interface TableOptions {
  /** Applied to a whole row's cells after padding (e.g. dimming a server that left); the borders stay plain. */
  style?: Array<((cell: string) => string) | undefined>;
}

/** The table as lines joined by "\n", no trailing newline. Every row has `head.length` cells. */
export function renderTextTable(head: string[], rows: string[][], options: TableOptions = {}): string {
  const widths = head.map((cell, column) => Math.max(displayWidth(cell), ...rows.map((row) => displayWidth(row[column] ?? ''))));
  const rule = (left: string, middle: string, right: string): string =>
    left + widths.map((width) => '─'.repeat(width + 2)).join(middle) + right;
  const line = (cells: string[], style?: (cell: string) => string): string =>
    '│' +
    widths
      .map((width, column) => {
        const cell = cells[column] ?? '';
        const padding = ' '.repeat(width - displayWidth(cell));
        return ` ${style ? style(cell) : cell}${padding} `;
      })
      .join('│') +
    '│';
  const body = rows.map((row, index) => line(row, options.style?.[index]));
  // With no rows, the header sits straight on the bottom rule (as cli-table3 drew it).
  return [rule('┌', '┬', '┐'), line(head), ...(body.length > 0 ? [rule('├', '┼', '┤'), ...body] : []), rule('└', '┴', '┘')].join('\n');
}
