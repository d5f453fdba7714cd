/**
 * Where a value stands in an ascending list: what the member set (hostnames) and the term
 * index (terms) insert into and delete from, by binary search.
 */

/** The first position whose entry is not below `value` (the list's length if none). */
export function lowerBound<T extends string | number>(list: readonly T[], value: T): number {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((list[mid] as T) < value) low = mid + 1;
    else high = mid;
  }
  return low;
}
