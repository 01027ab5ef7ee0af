"""Word classes of Chinese address text that are *not* address: regexes over kinds of words.

Each class is written from what the word is (a letting term, a direction, a transport note, an
administrative body, a contact note), not from strings seen in any data set: e.g. every unit type
``N房M厅`` / ``N室M厅`` is one pattern, every ``地铁…站…出口`` one pattern. :mod:`matching.address`
applies them after NFKC, bracket and punctuation removal and before numerals are read.
"""

from __future__ import annotations

import re

__all__ = ["Gate", "TRADITIONAL", "simplified", "strip_noise", "strip_tail_notes", "strip_unit_types", "ADDRESS_CHARS",
           "is_note_segment", "NOTE_HINT"]

CJK = "\u4e00-\u9fff"
_NUM = "零〇○一二两三四五六七八九十百千幺"

# traditional forms of the characters addresses are written with (NFKC leaves them alone)
TRADITIONAL = str.maketrans(dict(pair for pair in (
    "號号 樓楼 棟栋 層层 單单 區区 門门 戶户 邨村 裡里 衖巷 廈厦 園园 華华 廣广 東东 鎮镇 內内 間间 廳厅 對对 側侧 邊边 鐵铁 與与 兩两 貳二 場场 館馆 處处 電电 話话 聯联 "
    "係系 會会 員员 龍龙 灣湾 嶺岭 橋桥 莊庄 閣阁 寧宁 陽阳 臺台 後后 裏里 於于 滬沪 衛卫 廚厨 陸陆 萬万 國国 沖冲 頭头 崗岗 圍围 蓮莲 環环 濱滨 強强 學学 廠厂 風风 鳳凤 "
    "長长 興兴 業业 發发 體体 寶宝 羅罗 鹽盐 麗丽 綠绿 豐丰 農农 漁渔 黃黄 獅狮 總总 線线 際际 濤涛 溝沟 壩坝 灘滩 漢汉 濟济 紅红 綿绵 錦锦 銀银 鋼钢 鐘钟 雙双 雞鸡 鵬鹏 "
    "鶴鹤 齊齐 爾尔 蘭兰 藝艺 蘇苏 葉叶 觀观 貝贝 財财 貨货 質质 購购 賓宾 賽赛 趙赵 軍军 輝辉 輪轮 遠远 遲迟 郵邮 鄉乡 醫医 開开 閩闽 關关 陳陈 陰阴 隊队 階阶 隱隐 雜杂 "
    "離离 靈灵 頂顶 順顺 領领 題题 顏颜 馬马 駐驻 驛驿 鬧闹 魚鱼 鳥鸟 龐庞 龜龟 丟丢 並并 偉伟 傳传 僑侨 億亿 優优 儀仪 兒儿 凱凯 劃划 劉刘 勞劳 勝胜 勵励 匯汇 協协 卻却 "
    "厲厉 參参 吳吴 問问 啟启 團团 圖图 圓圆 塊块 墊垫 壇坛 壽寿 夢梦 夾夹 奪夺 奮奋 妝妆 婦妇 媽妈 孫孙 實实 審审 寫写 將将 專专 尋寻 導导 屬属 岡冈 峽峡 島岛 巒峦 幣币 "
    "幫帮 廟庙 廬庐 張张 彎弯 彙汇 從从 復复 徵征 恆恒 愛爱 態态 憶忆 應应 懷怀 戰战 戲戏 擁拥 擇择 據据 擴扩 數数 斷断 時时 晉晋 暉晖 書书 條条 楊杨 極极 標标 樹树 機机 "
    "檢检 權权 歡欢 歲岁 歷历 歸归 殘残 氣气 沒没 況况 淺浅 淵渊 溫温 湯汤 滿满 漲涨 澤泽 濕湿 為为 無无 煙烟 熱热 燈灯 爐炉 牆墙 狀状 猶犹 獎奖 現现 瑤瑶 産产 產产 畫画 "
    "當当 疊叠 盤盘 眾众 碼码 確确 礦矿 禮礼 種种 穩稳 窩窝 競竞 築筑 簡简 糧粮 紀纪 約约 紡纺 細细 組组 結结 絲丝 經经 網网 緣缘 縣县 織织 續续 纖纤 罰罚 義义 習习 聖圣 "
    "職职 聽听 肅肃 脈脉 腦脑 臨临 舉举 艙舱 營营 藍蓝 衝冲 補补 裝装 製制 複复 見见 規规 視视 親亲 訊讯 記记 設设 許许 診诊 試试 詩诗 誠诚 語语 說说 調调 論论 謝谢 證证 "
    "識识 議议 讓让 貿贸 資资 賢贤 贊赞 趕赶 躍跃 輕轻 載载 辦办 運运 達达 適适 選选 還还 鄧邓 鄭郑 釣钓 鋪铺 鎖锁 鏈链 閱阅 隨随 險险 雖虽 靜静 響响 項项 預预 頓顿 類类 "
    "顯显 飯饭 飲饮 養养 驗验 髮发 鬥斗 麵面 黨党 齒齿 龔龚 軒轩 滙汇 樂乐 榮荣 雲云 鄰邻 盧卢 嶼屿 薈荟 蔭荫 譽誉 楓枫 樺桦 櫻樱 瀾澜 禦御 璽玺 鋒锋 舊旧 "
).split()))

# --- contact notes: a keyword and what follows it (name, number), or a bare phone number -----------
_CONTACT_KW = r"(?:联系人|联系电话|联系方式|联系|电话|手机号?|座机|TEL|PHONE|MOBILE|微信|QQ)"
_CONTACT = re.compile(_CONTACT_KW + r".*$")
_PHONE_NUMBER = r"(?:\+?86-?)?(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8})"
_PHONE = re.compile(rf"(?<!\d){_PHONE_NUMBER}(?!\d)")
# a contact note wherever it stands (first, between parts, last): keyword, a name, the number
_CONTACT_PHONE = re.compile(rf"(?:{_CONTACT_KW}(?:[{CJK}]{{0,4}}?(?:{_CONTACT_KW}))?)(?:[{CJK}]{{0,4}}?)"
                            rf"(?<!\d){_PHONE_NUMBER}(?!\d)")
_NAME_CHAR = rf"(?:(?![号栋幢座元层楼室房户坊巷排弄里村路道街期区])[{CJK}])"
_PERSON = re.compile(rf"{_NAME_CHAR}?(?:先生|小姐|女士|师傅|阿姨|老板)|房东|业主|户主|租户|承租人")

# --- letting and sale terms, unit types ------------------------------------------------------------
_UNIT_TYPE = re.compile(
    rf"[一二两三四五六七][房室][{_NUM}]厅(?:[{_NUM}]卫)?(?:[{_NUM}]厨)?(?:[{_NUM}]阳台)?"
    rf"|(?<![{_NUM}])[一二三四五六单]房(?:间)?(?![{_NUM}\d号室])|两房(?:间)?(?![{_NUM}\d号室])"
    r"|单间|套间|开间|复式|跃层|单身公寓")
_LETTING = re.compile(
    r"月租金?\d*元?|租金\d*元?|出租屋|出租房|出租|招租|转租|求租|合租|整租|短租|长租|月租|日租|直租|急租|出售|急售|售房|转让|"
    r"中介勿扰|免中介费?|无中介费?|中介费?|免佣|个人房源|"
    r"拎包(?:即可)?入住|(?:即可|随时|即时)入住|押[一二三四\d]付[一二三四\d]|"
    r"(?:精|简|豪华?)装修?|带家私家电|家私家电齐?全?|家电齐全|带家私|"
    r"电梯房|步梯房|楼梯房|空房|有房|房源|朝南|南北通透|采光好|整栋|整层|整套|整间")
_PRICE = re.compile(r"\d+元(?:/?月)?")

# written with Arabic digits, a unit type is only told from a room number by the space before it
_UNIT_TYPE_DIGITS = re.compile(rf"(?<![\d{_NUM}])[1-7]\s*[房室]\s*[0-4]\s*厅(?:\s*\d\s*卫)?(?:\s*\d\s*厨)?"
                               rf"|[一二两三四五六七]\s*[房室]\s*[{_NUM}]\s*厅(?:\s*[{_NUM}]\s*卫)?")

# --- transport notes: 近/距 + (地铁|公交…) + line + station + exit + distance --------------------------
_TRANSPORT = re.compile(
    rf"(?:近|靠近|临近|邻近|紧邻|距离?|离|步行)?(?:地铁|轻轨|公交|巴士|有轨电车)"
    rf"(?:\d+号线|[{_NUM}]+号线|[A-Z\d]*线)?(?:[{CJK}]{{0,8}}?(?:站|口|线))?(?:[A-Z]\d*|\d+号?)?(?:出口|口)?"
    r"(?:\d+米|步行\d+分钟?)?"
    rf"|(?:近|靠近|临近|邻近|紧邻)[{CJK}]{{1,8}}?(?:地铁站|公交站|车站|站)(?:[A-Z]\d*)?(?:出口|口)?"
    rf"|(?:^|(?<=[\d号路街道村坊巷区栋室层元]))(?:(?![\d号路街道村坊巷区栋室层元])[{CJK}]){{1,6}}?"
    rf"(?:地铁站|公交站|地铁口)(?:[A-Z]\d*)?(?:出口|口)?")

# --- directions and landmarks: a direction word, and the landmark written before it -------------------
_DIRECTION_WORDS = (r"斜对面|对面|对过|附近|旁边|旁|隔壁|背后|后面|后侧|前面|东侧|西侧|南侧|北侧|侧面|侧|"
                    r"边上|交界处|交汇处|交叉口|路口|一带|周边|周围")
_BOUNDARY = r"\d号路街道村坊巷区栋室层元"
_LANDMARK_CHAR = rf"(?:(?![{_BOUNDARY}])[{CJK}A-Z])"       # a landmark's name never spans a component end
_LANDMARK_DIRECTION = re.compile(
    rf"(?:^|(?<=[{_BOUNDARY}])){_LANDMARK_CHAR}{{0,8}}?(?:{_DIRECTION_WORDS})")
_LEAD_LANDMARK = re.compile(
    rf"^{_LANDMARK_CHAR}{{0,8}}?[\d{_NUM}A-Z]+(?:号楼|栋|幢|座|号|楼|单元|门)?(?:{_DIRECTION_WORDS})"
    rf"(?=.*[{CJK}]{{2}}.*[\d{_NUM}])")
# a landmark after 近/靠近… written between the place and the building (景田花园靠近莲花山公园7栋201)
_NEAR_LANDMARK = re.compile(rf"(?<=[{CJK}])(?:靠近|临近|邻近|紧邻|近)(?:(?![\d号栋座幢])[{CJK}A-Z]){{1,10}}?"
                            rf"(?=[\d{_NUM}A-Z]+(?:号楼|栋|幢|座|#))")
_PATH = re.compile(rf"(?:走|爬|坐|乘)?(?:楼梯|电梯|步梯)(?:口|间)?(?:上去|上楼)?|(?:往|向|朝)?[东西南北前后左右里内]?(?:走|转|拐)(?:\d+米)?|往里|进去|直走|楼下|楼上|"
                   rf"\d+米(?:处|左右)?|[东西南北]边|"
                   rf"(?<![{_NUM}])[{_NUM}]{{1,3}}[楼层]以[上下]|(?<!\d)\d{{1,2}}[楼层]以[上下]|以[上下]")

# the second road of an intersection (福华路与金田路交汇处): the first road is where the house is
_INTERSECTION = re.compile(rf"[与和及](?:(?![\d号])[{CJK}]){{1,8}}?(?:大道|路|街)(?:交汇处|交叉口|交界处|交汇|路口|口)?")

# --- administrative bodies and filler ---------------------------------------------------------------
_VILLAGE_COMMITTEE = re.compile(r"村?村(?:居民|民|居)?(?:委员会|委会|委)")
_COMMUNITY_BODY = re.compile(r"社区(?:居民委员会|居委会|工作站|服务中心|党群服务中心|股份合作公司|党委)")
_RESIDENTS_COMMITTEE = re.compile(r"居民委员会|居委会")
_COMPANY = re.compile(rf"(?:实业|投资|发展|置业)?(?:股份)(?:有限|合作)?(?:公司)?(?:[{CJK}]{{0,4}}分公司)?"
                      rf"|(?:实业|投资)(?:有限)?公司")
_OFFICE = re.compile(r"街道办事处|街道办|街办")
_BODY = re.compile(r"(?:物业)?管理处|物业(?:服务)?(?:中心|公司)|工作站|办事处|服务中心")
# labels written before a number (房号: 501, 第3栋) and ordinals
_LABEL = re.compile(rf"(?:房号|门牌号?|栋号|楼号|单元号|室号|楼层|房间号)(?=[\d{_NUM}A-Z])"
                    rf"|第(?=(?:[\d{_NUM}]+|[A-Z])(?:栋|幢|座|号|楼|单元|梯|门|层|室|房|户|期|区|坊|巷|排|弄|F|#|-|$))")
_LEAD = re.compile(r"^(?:现?居?住址|地址|现住|居住于?|住在|户籍地)")
_REPEAT = re.compile(rf"([{CJK}]{{2,10}}?)\1")

# characters that end an address part: a tail after the last of them holds no address
ADDRESS_CHARS = re.compile(rf"[\d{_NUM}号栋幢座元层楼室房户坊巷排弄村路道街期区A-Z][^\d{_NUM}号栋幢座元层楼室房户坊巷排弄村路道街期区A-Z]*$")
_TAIL_NOTE = re.compile(rf"(?:{_DIRECTION_WORDS}|往里|进去|直走|楼下|楼上|米|站|地铁|公交|出口|内|里面|门口)")


# characters every match of a class contains: a class whose characters are absent is not run (speed)
class Gate:
    """``gate.isdisjoint(s)``: whether none of the characters occurs in ``s`` (one compiled class search)."""

    def __init__(self, chars: str) -> None:
        self._rx = re.compile("[" + re.escape(chars) + "]")

    def isdisjoint(self, s: str) -> bool:
        return self._rx.search(s) is None


_TRADITIONAL_GATE = Gate("".join(map(chr, TRADITIONAL)))


def simplified(s: str) -> str:
    """``s`` with the traditional address characters simplified (:data:`TRADITIONAL`). Few texts hold one,
    and a search for them is a tenth of the table's pass over every character, so the table runs only then."""
    return s if _TRADITIONAL_GATE.isdisjoint(s) else s.translate(TRADITIONAL)


# every phone number holds seven digits in a row (a mobile eleven, a landline's number seven or eight)
_SEVEN_DIGITS = re.compile(r"\d{7}")

_GATES = {name: Gate(chars) for name, chars in {
    "contact": "联电手座TPM微Q", "person": "生姐士傅姨板东主租", "transport": "铁轨交巴车站",
    "unit_type": "厅房间复跃寓", "letting": "租售让介佣源住押装家梯房朝透采整", "company": "股司",
    "body": "理业站办服", "direction": "对近旁壁后前侧边交口带周靠", "path": "走转拐往进楼米边以梯",
    "committee": "委会办", "community_body": "工服党股"}.items()}


def strip_noise(s: str) -> str:
    """Remove every word class above from ``s`` (already NFKC'd, upper-cased, without spaces and
    punctuation); administrative bodies are reduced to what they name (上沙村委会 -> 上沙村)."""
    g = _GATES
    s = _LEAD.sub("", s)
    if "号" in s or "第" in s or "门" in s or "层" in s:
        s = _LABEL.sub("", s)
    if not g["contact"].isdisjoint(s):
        s = _CONTACT_PHONE.sub("", s)
        s = _CONTACT.sub("", s)
    if _SEVEN_DIGITS.search(s):
        s = _PHONE.sub("", s)
    if not g["person"].isdisjoint(s):
        s = _PERSON.sub("", s)
    if not g["transport"].isdisjoint(s):
        s = _TRANSPORT.sub("", s)
    if not g["unit_type"].isdisjoint(s):
        s = _UNIT_TYPE.sub("", s)
    if "元" in s:
        s = _PRICE.sub("", s)
    if not g["letting"].isdisjoint(s):
        s = _LETTING.sub("", s)
    if "与" in s or "和" in s or "及" in s:
        s = _INTERSECTION.sub("", s)
    if not g["direction"].isdisjoint(s) or not g["path"].isdisjoint(s):
        s = _LEAD_LANDMARK.sub("", s)                   # 7栋对面福田区景田花园2栋301: a landmark first
        if "近" in s:
            s = _NEAR_LANDMARK.sub("", s)
        s = strip_tail_notes(s)
        if not g["direction"].isdisjoint(s):
            s = _LANDMARK_DIRECTION.sub("", s)         # 上沙村居委会对面东村二坊: the committee is a landmark
        if not g["path"].isdisjoint(s):
            s = _PATH.sub("", s)
    if not g["community_body"].isdisjoint(s) or not g["committee"].isdisjoint(s):
        s = _OFFICE.sub("街道", s)
        s = _COMMUNITY_BODY.sub("社区", s)
        s = _VILLAGE_COMMITTEE.sub("村", s)             # 上沙村居委会 -> 上沙村 (the village's committee)
        s = _RESIDENTS_COMMITTEE.sub("社区", s)
    if not g["company"].isdisjoint(s):
        s = _COMPANY.sub("村", s)
    s = s.replace("村村", "村").replace("社区社区", "社区").replace("街道街道", "街道")
    if not g["body"].isdisjoint(s):
        s = _BODY.sub("", s)
    return _REPEAT.sub(r"\1", s)


def strip_unit_types(s: str) -> str:
    """Remove unit types written with Arabic digits (``2房1厅``, ``3室2厅1卫``) while spaces still
    separate them from a room number (``501 2房1厅``); run before whitespace is dropped."""
    if "厅" not in s:
        return s
    return _UNIT_TYPE_DIGITS.sub(" ", s)


_END_NOTE = re.compile(rf"(?:{_DIRECTION_WORDS}|往里走|往里|进去|直走|楼下|楼上|里面|门口|靠[{CJK}]{{0,4}})$")
_NAME_END = frozenset("村路街道区")
_NUMBER_MARK = frozenset("号栋幢座元层楼室房户坊巷排弄期梯门F")
_NUMBER_CHARS = frozenset("0123456789" + _NUM)


def strip_tail_notes(s: str) -> str:
    """Drop a note at the end: a direction word and the landmark written before it, back to the last
    number or component end (``…单元五零二牌坊隔壁`` -> ``…单元五零二``; ``上沙村附近`` -> ``上沙村``);
    then any tail after the last address character that holds a note word (``…602沃尔玛里面``)."""
    for _ in range(3):
        m = _END_NOTE.search(s)
        if not m:
            break
        j = m.start()
        while j > 0:
            ch = s[j - 1]
            if ch in _NUMBER_CHARS or ch in _NAME_END:
                break
            if ch in _NUMBER_MARK and j >= 2 and (s[j - 2] in _NUMBER_CHARS or s[j - 2] in "号单栋"):
                break                                   # 3单元, 5号楼: a marker after a number
            j -= 1
        s = s[:j] if j > 0 else s[: m.start()]
    m = ADDRESS_CHARS.search(s)
    if m and len(m.group(0)) > 1 and _TAIL_NOTE.search(m.group(0)[1:]):
        return s[: m.start() + 1]
    return s


# a whole segment (between spaces/commas) that is a note: a contact note or phone number, a landmark with a
# direction (7栋对面, 沃尔玛旁边), a "near" note (近福华小学); dropped when another segment holds the address
_NOTE_SEGMENT = re.compile(rf"^(?:(?:{_CONTACT_KW})[:：]?[{CJK}A-Z]{{0,6}}?(?:{_CONTACT_KW})?[:：]?(?:{_PHONE_NUMBER})?"
                           rf"|(?:{_CONTACT_KW})?[{CJK}]{{0,4}}{_PHONE_NUMBER}"
                           rf"|(?:靠近|临近|邻近|紧邻|近)[^\d{_NUM}号栋座室层]{{1,12}})$")
NOTE_HINT = re.compile(rf"{_CONTACT_KW}|\d{{7}}|近|{_DIRECTION_WORDS}")   # a note segment holds one of these
_LANDMARK_SEGMENT = re.compile(rf"^.{{0,14}}?(?:{_DIRECTION_WORDS})$")


def is_note_segment(seg: str, last: bool = False) -> bool:
    """Whether a segment of an address written with separators is a note, not a part of the address: a
    contact note or phone number, a "near" note anywhere; a landmark with a direction (``7栋对面``) when it
    is not the last segment (a last one, ``3-302隔壁``, is the address with a tail note, cut later)."""
    return bool(_NOTE_SEGMENT.match(seg) or (not last and _LANDMARK_SEGMENT.match(seg)))
