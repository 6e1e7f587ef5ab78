// vid2scene's self-contained splat viewer (scene.html): it decodes the SPZ inlined in the page, draws the
// splats with WebGL2 (EWA splatting: each splat's 3D covariance projected to a 2D ellipse, blended front to
// back after a 16-bit counting sort by depth), orbits with the mouse or touch, and replays the capture's
// camera path. No network, no libraries. Our frame: OpenCV axes (x right, y down, z forward), -y up.
"use strict";
(() => {
  const SH_C0 = 0.28209479177387814;
  const TEX_WIDTH = 2048;
  const data = JSON.parse(document.getElementById("scene-data").textContent);
  const canvas = document.getElementById("scene-canvas");
  const status = document.getElementById("scene-status");
  const playButton = document.getElementById("play-path");
  const resetButton = document.getElementById("reset-view");

  // ---- decoding -------------------------------------------------------------------------------------

  function base64Bytes(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function gunzip(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  /** Smallest-three (SPZ v3) or first-three (v2) rotation of splat i as [x, y, z, w] (RUB). */
  function readQuat(rot, bytes, i, q) {
    if (bytes === 4) {
      let comp = (rot[4 * i] | (rot[4 * i + 1] << 8) | (rot[4 * i + 2] << 16) | (rot[4 * i + 3] << 24)) >>> 0;
      const largest = comp >>> 30;
      let sum = 0;
      for (let k = 3; k >= 0; k--) {
        if (k === largest) continue;
        const mag = comp & 511;
        const negative = (comp >>> 9) & 1;
        comp >>>= 10;
        q[k] = ((Math.SQRT1_2 * mag) / 511) * (negative ? -1 : 1);
        sum += q[k] * q[k];
      }
      q[largest] = Math.sqrt(Math.max(0, 1 - sum));
    } else {
      let sum = 0;
      for (let k = 0; k < 3; k++) {
        q[k] = rot[3 * i + k] / 127.5 - 1;
        sum += q[k] * q[k];
      }
      q[3] = Math.sqrt(Math.max(0, 1 - sum));
    }
  }

  /** SPZ (version 2 or 3) → centres, covariances and RGBA in our frame (SPZ is RUB: y and z flip). */
  function decodeSpz(raw) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (view.getUint32(0, true) !== 0x5053474e) throw new Error("the inlined scene is not an SPZ file");
    const version = view.getUint32(4, true);
    if (version < 2 || version > 3) throw new Error(`SPZ version ${version} is not supported`);
    const n = view.getUint32(8, true);
    const unit = 1 / (1 << raw[13]);
    let off = 16;
    const take = (count) => raw.subarray(off, (off += count));
    const pos = take(9 * n);
    const alpha = take(n);
    const color = take(3 * n);
    const scale = take(3 * n);
    const rotBytes = version === 3 ? 4 : 3;
    const rot = take(rotBytes * n);
    const texels = TEX_WIDTH * Math.max(1, Math.ceil(n / TEX_WIDTH));
    const centers = new Float32Array(4 * texels);
    const covA = new Float32Array(4 * texels);
    const covB = new Float32Array(4 * texels);
    const rgba = new Uint8Array(4 * texels);
    const flip = [1, -1, -1];
    const q = [0, 0, 0, 1];
    for (let i = 0; i < n; i++) {
      for (let a = 0; a < 3; a++) {
        const b = 9 * i + 3 * a;
        let v = pos[b] | (pos[b + 1] << 8) | (pos[b + 2] << 16);
        if (v & 0x800000) v -= 0x1000000;
        centers[4 * i + a] = flip[a] * v * unit;
      }
      readQuat(rot, rotBytes, i, q);
      const x = q[0], y = -q[1], z = -q[2], w = q[3]; // the same rotation with y and z flipped
      const s0 = Math.exp(scale[3 * i] / 16 - 10);
      const s1 = Math.exp(scale[3 * i + 1] / 16 - 10);
      const s2 = Math.exp(scale[3 * i + 2] / 16 - 10);
      const r00 = 1 - 2 * (y * y + z * z), r01 = 2 * (x * y - w * z), r02 = 2 * (x * z + w * y);
      const r10 = 2 * (x * y + w * z), r11 = 1 - 2 * (x * x + z * z), r12 = 2 * (y * z - w * x);
      const r20 = 2 * (x * z - w * y), r21 = 2 * (y * z + w * x), r22 = 1 - 2 * (x * x + y * y);
      const m00 = r00 * s0, m01 = r01 * s1, m02 = r02 * s2;
      const m10 = r10 * s0, m11 = r11 * s1, m12 = r12 * s2;
      const m20 = r20 * s0, m21 = r21 * s1, m22 = r22 * s2;
      covA[4 * i] = m00 * m00 + m01 * m01 + m02 * m02;
      covA[4 * i + 1] = m00 * m10 + m01 * m11 + m02 * m12;
      covA[4 * i + 2] = m00 * m20 + m01 * m21 + m02 * m22;
      covA[4 * i + 3] = m10 * m10 + m11 * m11 + m12 * m12;
      covB[4 * i] = m10 * m20 + m11 * m21 + m12 * m22;
      covB[4 * i + 1] = m20 * m20 + m21 * m21 + m22 * m22;
      for (let c = 0; c < 3; c++) {
        const dc = (color[3 * i + c] / 255 - 0.5) / 0.15;
        rgba[4 * i + c] = Math.max(0, Math.min(255, Math.round((0.5 + SH_C0 * dc) * 255)));
      }
      rgba[4 * i + 3] = alpha[i];
    }
    return { n, centers, covA, covB, rgba };
  }

  // ---- WebGL ----------------------------------------------------------------------------------------

  const VERTEX = `#version 300 es
precision highp float;
precision highp int;
precision highp sampler2D;
uniform sampler2D uCenter, uCovA, uCovB, uColor;
uniform mat3 uRot;
uniform vec3 uTrans;
uniform vec2 uFocal, uViewport;
in vec2 aCorner;
in uint aIndex;
out vec4 vColor;
out vec2 vPos;
void main() {
  gl_Position = vec4(0.0, 0.0, 2.0, 1.0);
  ivec2 tc = ivec2(int(aIndex % ${TEX_WIDTH}u), int(aIndex / ${TEX_WIDTH}u));
  vec3 c = uRot * texelFetch(uCenter, tc, 0).xyz + uTrans;
  if (c.z < 0.01) return;
  vec2 px = uFocal * c.xy / c.z + 0.5 * uViewport;
  if (any(lessThan(px, -0.3 * uViewport)) || any(greaterThan(px, 1.3 * uViewport))) return;
  vec4 a = texelFetch(uCovA, tc, 0);
  vec4 b = texelFetch(uCovB, tc, 0);
  mat3 V = mat3(a.x, a.y, a.z, a.y, a.w, b.x, a.z, b.x, b.y);
  mat3 J = mat3(uFocal.x / c.z, 0.0, 0.0, 0.0, uFocal.y / c.z, 0.0,
                -uFocal.x * c.x / (c.z * c.z), -uFocal.y * c.y / (c.z * c.z), 0.0);
  mat3 T = J * uRot;
  mat3 cov = T * V * transpose(T);
  float c00 = cov[0][0] + 0.3, c11 = cov[1][1] + 0.3, c01 = cov[0][1];
  float mid = 0.5 * (c00 + c11);
  float radius = length(vec2(0.5 * (c00 - c11), c01));
  float l1 = mid + radius, l2 = mid - radius;
  if (l2 <= 0.0) return;
  vec2 d = vec2(c01, l1 - c00);
  d = dot(d, d) < 1e-12 ? vec2(1.0, 0.0) : normalize(d);
  vec2 major = min(sqrt(2.0 * l1), 1024.0) * d;
  vec2 minor = min(sqrt(2.0 * l2), 1024.0) * vec2(d.y, -d.x);
  vec2 p = px + aCorner.x * major + aCorner.y * minor;
  gl_Position = vec4(2.0 * p.x / uViewport.x - 1.0, 1.0 - 2.0 * p.y / uViewport.y, 0.0, 1.0);
  vColor = texelFetch(uColor, tc, 0);
  vPos = aCorner;
}`;

  const FRAGMENT = `#version 300 es
precision highp float;
in vec4 vColor;
in vec2 vPos;
out vec4 fragColor;
void main() {
  float e = -dot(vPos, vPos);
  if (e < -4.0) discard;
  float alpha = exp(e) * vColor.a;
  fragColor = vec4(alpha * vColor.rgb, alpha);
}`;

  function compile(gl, type, source) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    return shader;
  }

  function texture(gl, unit, internal, format, type, pixels) {
    const tex = gl.createTexture();
    gl.activeTexture(gl.TEXTURE0 + unit);
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    const height = pixels.length / 4 / TEX_WIDTH;
    gl.texImage2D(gl.TEXTURE_2D, 0, internal, TEX_WIDTH, height, 0, format, type, pixels);
    return tex;
  }

  // ---- cameras --------------------------------------------------------------------------------------

  const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const norm = (a) => {
    const l = Math.hypot(a[0], a[1], a[2]) || 1;
    return [a[0] / l, a[1] / l, a[2] / l];
  };
  const mix = (a, b, t) => [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];

  /** A camera from its centre and its forward (z) and down (y) axes in the world. */
  function cameraFrom(center, forward, down) {
    const z = norm(forward);
    const x = norm(cross(down, z));
    const y = cross(z, x);
    return { center, rows: [x, y, z] };
  }

  const target = data.target;
  const poses = data.poses.map((p) => ({ center: p.center, rows: [p.rows[0], p.rows[1], p.rows[2]] }));
  const orbit = { az: 0, el: 0, r: 1 };

  function orbitFrom(center) {
    const v = sub(center, target);
    orbit.r = Math.max(1e-3, Math.hypot(v[0], v[1], v[2]));
    orbit.el = Math.asin(Math.max(-1, Math.min(1, -v[1] / orbit.r)));
    orbit.az = Math.atan2(v[0], -v[2]);
  }

  function orbitCamera() {
    const ce = Math.cos(orbit.el);
    const dir = [ce * Math.sin(orbit.az), -Math.sin(orbit.el), -ce * Math.cos(orbit.az)];
    const center = [target[0] + orbit.r * dir[0], target[1] + orbit.r * dir[1], target[2] + orbit.r * dir[2]];
    return cameraFrom(center, sub(target, center), [0, 1, 0]);
  }

  function pathCamera(t) {
    const f = t * (poses.length - 1);
    const i = Math.min(poses.length - 2, Math.floor(f));
    const a = f - i;
    const p = poses[i], q = poses[i + 1];
    return cameraFrom(mix(p.center, q.center, a), mix(p.rows[2], q.rows[2], a), mix(p.rows[1], q.rows[1], a));
  }

  // ---- the viewer -----------------------------------------------------------------------------------

  async function start() {
    const gl = canvas.getContext("webgl2", { antialias: false, premultipliedAlpha: true, preserveDrawingBuffer: true });
    if (!gl) throw new Error("this browser has no WebGL2");
    const splats = decodeSpz(await gunzip(base64Bytes(data.spz)));
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
    gl.useProgram(program);
    texture(gl, 0, gl.RGBA32F, gl.RGBA, gl.FLOAT, splats.centers);
    texture(gl, 1, gl.RGBA32F, gl.RGBA, gl.FLOAT, splats.covA);
    texture(gl, 2, gl.RGBA32F, gl.RGBA, gl.FLOAT, splats.covB);
    texture(gl, 3, gl.RGBA8, gl.RGBA, gl.UNSIGNED_BYTE, splats.rgba);
    ["uCenter", "uCovA", "uCovB", "uColor"].forEach((name, unit) => gl.uniform1i(gl.getUniformLocation(program, name), unit));
    const loc = (name) => gl.getUniformLocation(program, name);
    const uRot = loc("uRot"), uTrans = loc("uTrans"), uFocal = loc("uFocal"), uViewport = loc("uViewport");

    const vao = gl.createVertexArray();
    gl.bindVertexArray(vao);
    const corner = gl.getAttribLocation(program, "aCorner");
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-2, -2, 2, -2, 2, 2, -2, 2]), gl.STATIC_DRAW);
    gl.enableVertexAttribArray(corner);
    gl.vertexAttribPointer(corner, 2, gl.FLOAT, false, 0, 0);
    const index = gl.getAttribLocation(program, "aIndex");
    const indexBuffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, indexBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, 4 * splats.n, gl.DYNAMIC_DRAW);
    gl.enableVertexAttribArray(index);
    gl.vertexAttribIPointer(index, 1, gl.UNSIGNED_INT, 0, 0);
    gl.vertexAttribDivisor(index, 1);

    gl.disable(gl.DEPTH_TEST);
    gl.enable(gl.BLEND);
    gl.blendFuncSeparate(gl.ONE_MINUS_DST_ALPHA, gl.ONE, gl.ONE_MINUS_DST_ALPHA, gl.ONE); // front to back

    const order = new Uint32Array(splats.n);
    const keys = new Uint16Array(splats.n);
    const depth = new Float32Array(splats.n);
    const counts = new Uint32Array(65536);

    /** Counting sort of the splats by depth along the camera's z, nearest first. */
    function sort(camera) {
      const [zx, zy, zz] = camera.rows[2];
      const c = splats.centers;
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < splats.n; i++) {
        const d = zx * c[4 * i] + zy * c[4 * i + 1] + zz * c[4 * i + 2];
        depth[i] = d;
        if (d < lo) lo = d;
        if (d > hi) hi = d;
      }
      const scale = 65535 / Math.max(hi - lo, 1e-9);
      counts.fill(0);
      for (let i = 0; i < splats.n; i++) {
        const k = ((depth[i] - lo) * scale) | 0;
        keys[i] = k;
        counts[k]++;
      }
      for (let k = 1; k < 65536; k++) counts[k] += counts[k - 1];
      for (let i = splats.n - 1; i >= 0; i--) order[--counts[keys[i]]] = i;
      gl.bindBuffer(gl.ARRAY_BUFFER, indexBuffer);
      gl.bufferSubData(gl.ARRAY_BUFFER, 0, order);
    }

    function draw(camera) {
      const dpr = Math.min(window.devicePixelRatio || 1, 2);
      const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
      const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
      }
      gl.viewport(0, 0, w, h);
      gl.clearColor(0, 0, 0, 0);
      gl.clear(gl.COLOR_BUFFER_BIT);
      sort(camera);
      const [x, y, z] = camera.rows;
      const t = [0, 1, 2].map((r) => -(camera.rows[r][0] * camera.center[0] + camera.rows[r][1] * camera.center[1] + camera.rows[r][2] * camera.center[2]));
      gl.uniformMatrix3fv(uRot, false, [x[0], y[0], z[0], x[1], y[1], z[1], x[2], y[2], z[2]]);
      gl.uniform3fv(uTrans, t);
      const focal = (data.camera.fy / data.camera.height) * h;
      gl.uniform2f(uFocal, focal, focal);
      gl.uniform2f(uViewport, w, h);
      gl.drawArraysInstanced(gl.TRIANGLE_FAN, 0, 4, splats.n);
      canvas.dataset.frames = String(Number(canvas.dataset.frames || 0) + 1);
    }

    let path = null; // {start: ms, seconds}
    let dirty = true;
    const invalidate = () => {
      dirty = true;
    };
    const reset = () => {
      path = null;
      orbitFrom(poses[0].center);
      invalidate();
    };
    reset();

    let lastStep = 0;
    function step(now) {
      lastStep = performance.now();
      if (path) {
        const t = Math.min(1, (now - path.start) / (1000 * path.seconds));
        const camera = pathCamera(t);
        draw(camera);
        if (t >= 1) {
          path = null;
          orbitFrom(camera.center);
          canvas.dataset.path = "done";
        }
      } else if (dirty) {
        dirty = false;
        draw(orbitCamera());
      }
    }
    function frame(now) {
      step(now);
      requestAnimationFrame(frame);
    }
    // A hidden or throttled page gets no animation frames: keep stepping (a path still ends) on a timer.
    setInterval(() => {
      if (performance.now() - lastStep > 250) step(performance.now());
    }, 250);

    const pointers = new Map();
    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      pointers.set(e.pointerId, [e.clientX, e.clientY]);
      path = null;
    });
    canvas.addEventListener("pointermove", (e) => {
      const previous = pointers.get(e.pointerId);
      if (!previous) return;
      if (pointers.size === 1) {
        orbit.az += 0.006 * (e.clientX - previous[0]);
        orbit.el = Math.max(-1.5, Math.min(1.5, orbit.el + 0.006 * (e.clientY - previous[1])));
      } else if (pointers.size === 2) {
        const other = [...pointers.entries()].find(([id]) => id !== e.pointerId)[1];
        const before = Math.hypot(previous[0] - other[0], previous[1] - other[1]);
        const after = Math.hypot(e.clientX - other[0], e.clientY - other[1]);
        if (before > 0 && after > 0) orbit.r *= before / after;
      }
      pointers.set(e.pointerId, [e.clientX, e.clientY]);
      invalidate();
    });
    const release = (e) => pointers.delete(e.pointerId);
    canvas.addEventListener("pointerup", release);
    canvas.addEventListener("pointercancel", release);
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      orbit.r *= Math.exp(0.001 * e.deltaY);
      invalidate();
    }, { passive: false });
    window.addEventListener("resize", invalidate);
    playButton.disabled = poses.length < 2;
    playButton.addEventListener("click", () => {
      path = { start: performance.now(), seconds: Math.max(4, poses.length / 10) };
      canvas.dataset.path = "playing";
    });
    resetButton.addEventListener("click", reset);
    status.textContent = `${splats.n.toLocaleString()} splats · drag to orbit, scroll or pinch to zoom`;
    canvas.dataset.loaded = "true";
    requestAnimationFrame(frame);
  }

  start().catch((err) => {
    status.textContent = `Cannot show the scene: ${err.message}`;
    canvas.dataset.error = err.message;
  });
})();
