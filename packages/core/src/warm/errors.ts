/** The error the warm cache raises for a known condition (unknown key, bad size). */
import { StasisError } from "../errors/index.js";

export class WarmError extends StasisError {}
