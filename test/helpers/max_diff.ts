/** max |got - want| and max |want|. */
export function maxDiff(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
): { diff: number; scale: number } {
  if (got.length !== want.length) throw new Error(`length ${got.length} != ${want.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < got.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return { diff, scale };
}
